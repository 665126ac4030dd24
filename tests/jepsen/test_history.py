"""The history format: JSON-lines round trip, pairing, and loud failures on bad input."""

import json
from pathlib import Path

import pytest

from jepsen_like.history import (
    F,
    History,
    HistoryError,
    Poll,
    Recorder,
    Send,
    Type,
    read_history,
    write_history,
)
from jepsen_like.synthetic import Script, simulate_queue


def test_jsonl_round_trip_keeps_every_entry(tmp_path: Path) -> None:
    entries = simulate_queue(7, steps=200)
    path = tmp_path / "history.jsonl"
    write_history(path, entries)
    history = read_history(path)
    assert history.entries == tuple(entries)
    assert len(path.read_text().splitlines()) == len(entries)


def test_the_documented_json_shape(tmp_path: Path) -> None:
    lines = [
        {"time_ns": 10, "process": 0, "type": "invoke", "f": "send",
         "value": {"tp": "t/0", "value": "a"}},
        {"time_ns": 12, "process": 1, "type": "invoke", "f": "poll", "value": {}},
        {"time_ns": 20, "process": 0, "type": "ok", "f": "send",
         "value": {"tp": "t/0", "value": "a", "offset": 0}},
        {"time_ns": 25, "process": 1, "type": "ok", "f": "poll",
         "value": {"reads": {"t/0": [[0, "a"]]}, "rebalanced": ["t/1"]}, "phase": "final"},
    ]  # fmt: skip
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    history = read_history(path)
    send, poll = history.operations
    assert (send.f, send.type, send.value) == (F.SEND, Type.OK, Send("t/0", "a", 0))
    assert (send.invoke_ns, send.complete_ns) == (10, 20)
    assert poll.value == Poll((("t/0", ((0, "a"),)),), frozenset({"t/1"}))
    assert history.has_final_phase


def test_pairing_completion_outcomes() -> None:
    recorder = Recorder()
    recorder.invoke(0, F.SEND, Send("t/0", "a"))
    recorder.invoke(1, F.SEND, Send("t/0", "b"))
    recorder.invoke(2, F.SEND, Send("t/0", "c"))
    recorder.complete(1, Type.FAIL)
    recorder.complete(0, Type.INFO)
    recorder.invoke(3, F.POLL, Poll())
    recorder.crash(3)
    ops = recorder.history().operations
    assert [op.type for op in ops] == [Type.INFO, Type.FAIL, Type.INFO, Type.INFO, Type.INFO]
    assert [op.f for op in ops] == [F.SEND, F.SEND, F.SEND, F.POLL, F.CRASH]
    assert all(op.complete_ns is None for op in ops if op.type is Type.INFO)
    assert ops[0].value == Send("t/0", "a"), "an info send reports what was asked"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"time_ns": 1, "process": 0, "type": "ok", "f": "poll", "value": {}}],
         "without an invocation"),
        ([{"time_ns": 1, "process": 0, "type": "invoke", "f": "poll"},
          {"time_ns": 2, "process": 0, "type": "invoke", "f": "poll"}], "already busy"),
        ([{"time_ns": 5, "process": 0, "type": "invoke", "f": "poll"},
          {"time_ns": 2, "process": 1, "type": "invoke", "f": "poll"}], "backwards"),
        ([{"time_ns": 1, "process": 0, "type": "invoke", "f": "poll"},
          {"time_ns": 2, "process": 0, "type": "ok", "f": "send",
           "value": {"tp": "t/0", "value": 1}}], "different operation"),
        ([{"time_ns": 1, "process": 0, "type": "invoke", "f": "dance"}], "dance"),
        ([{"time_ns": 1, "process": 0, "type": "invoke", "f": "send",
           "value": {"tp": "t/0", "value": [1]}}], "int or str"),
        ([{"time_ns": 1, "process": 0, "type": "ok", "f": "poll",
           "value": {"reads": {"t/0": [[-1, "a"]]}}}], "non-negative"),
    ],
)  # fmt: skip
def test_malformed_histories_fail_loudly(tmp_path: Path, lines: list, message: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(HistoryError, match=message):
        read_history(path)


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"time_ns": 1, "process": 0, "type": "invoke", "f": "poll"}\n{oops\n')
    with pytest.raises(HistoryError, match=":2:"):
        read_history(path)


def test_script_operations_do_not_overlap() -> None:
    history: History = Script().send(0, "t/0", "a", 0).poll(1, {"t/0": [(0, "a")]}).history()
    first, second = history.operations
    assert first.complete_ns is not None
    assert first.complete_ns < second.invoke_ns
