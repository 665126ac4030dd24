"""The run harness's pure parts: merging worker files, the seeded schedule, sparse offsets."""

import json
import socket
import threading
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from jepsen_like.campaign import DEFAULT_COMBOS, RunSummary, nodes_for, render
from jepsen_like.history import Poll, Recorder, Send, Type
from jepsen_like.linearizability import check_history
from jepsen_like.models import LogModel, densify
from jepsen_like.nemeses import KINDS, NemesisError, parse_kinds, schedule
from jepsen_like.proxy import ProxyNetwork
from jepsen_like.runner import merge_histories
from jepsen_like.worker import WorkerSpec, _high_watermarks


def _line(time_ns: int, process: int, kind: str, value: dict) -> str:
    entry = {"index": 0, "time_ns": time_ns, "process": process, "type": kind, "f": "send"}
    return json.dumps({**entry, "value": value}) + "\n"


def test_merge_orders_by_time_and_drops_a_torn_last_line(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    first.write_text(
        _line(10, 0, "invoke", {"tp": "t/0", "value": 1})
        + _line(40, 0, "ok", {"tp": "t/0", "value": 1, "offset": 0})
        + '{"index": 0, "time_ns": 50, "proc'  # killed mid-write
    )
    second.write_text(
        _line(20, 1, "invoke", {"tp": "t/0", "value": 2})
        + _line(30, 1, "ok", {"tp": "t/0", "value": 2, "offset": 1})
    )
    history = merge_histories([first, second])
    assert [entry.time_ns for entry in history.entries] == [10, 20, 30, 40]
    assert [entry.index for entry in history.entries] == [0, 1, 2, 3]
    assert all(op.type is Type.OK for op in history.operations)


def test_merge_refuses_a_corrupt_line_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("not json\n" + _line(10, 0, "invoke", {"tp": "t/0", "value": 1}))
    with pytest.raises(ValueError, match=r"a\.jsonl:1"):
        merge_histories([path])


def _gappy_history(second_offset: int) -> Recorder:
    """Two acknowledged sends at offsets 1 and ``second_offset`` (0 is a control batch),
    then a poll that reads both."""
    recorder = Recorder()
    recorder.invoke(0, "send", Send("t/0", "a"))
    recorder.complete(0, Type.OK, Send("t/0", "a", 1))
    recorder.invoke(0, "send", Send("t/0", "b"))
    recorder.complete(0, Type.OK, Send("t/0", "b", second_offset))
    recorder.invoke(1, "poll", Poll())
    recorder.complete(1, Type.OK, Poll((("t/0", ((1, "a"), (second_offset, "b"))),)))
    return recorder


def test_sparse_offsets_judge_the_version_order() -> None:
    history = _gappy_history(3).history()
    assert not check_history(history, LogModel()).valid
    assert check_history(history, LogModel(sparse_offsets=True)).valid
    dense = densify(history)
    assert [op.value.offset for op in dense.by_f("send")] == [0, 1]


def test_sparse_offsets_still_catch_a_read_that_contradicts_an_ack() -> None:
    recorder = _gappy_history(3)
    recorder.invoke(2, "poll", Poll())
    recorder.complete(2, Type.OK, Poll((("t/0", ((1, "b"),)),)))
    assert not check_history(recorder.history(), LogModel(sparse_offsets=True)).valid


def test_schedule_is_a_function_of_the_seed() -> None:
    kinds = parse_kinds("kill,partition,pause")
    assert schedule(7, kinds, 120) == schedule(7, kinds, 120)
    assert schedule(7, kinds, 120) != schedule(8, kinds, 120)
    rounds = schedule(7, kinds, 120)
    assert rounds and all(r.start_s + r.duration_s <= 120 for r in rounds)
    assert all(len({f.kind for f in r.faults}) == len(r.faults) for r in rounds)


def test_forced_variant_and_unknown_names() -> None:
    rounds = schedule(3, parse_kinds("kill:all"), 60)
    assert {(f.kind, f.variant) for r in rounds for f in r.faults} == {("kill", "all")}
    with pytest.raises(NemesisError, match="unknown nemesis 'chaos'"):
        parse_kinds("kill,chaos")
    with pytest.raises(NemesisError, match="unknown kill variant"):
        parse_kinds("kill:everyone")
    assert set(KINDS) >= {"kill", "pause", "partition", "delay", "loss"}


def _echo_server(port: int) -> socket.socket:
    server = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(1024):
            connection.sendall(data)


def _peer_port(peers: str, node_id: int) -> int:
    entry = next(p for p in peers.split(",") if p.startswith(f"{node_id}@"))
    return int(entry.rsplit(":", 1)[1])


def _round_trip(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        client.sendall(b"ping")
        return client.recv(16)


def _round_trip_or_closed(port: int) -> bytes:
    try:
        return _round_trip(port)
    except OSError:
        return b""


def test_proxy_forwards_cuts_and_heals() -> None:
    network = ProxyNetwork((1, 2))
    network.open()
    try:
        real_port = _peer_port(network.endpoints(2).peers, 2)
        via_proxy = _peer_port(network.endpoints(1).peers, 2)
        assert via_proxy != real_port
        server = _echo_server(real_port)
        assert _round_trip(via_proxy) == b"ping"
        live = socket.create_connection(("127.0.0.1", via_proxy), timeout=2)
        live.sendall(b"a")
        assert live.recv(1) == b"a"
        network.cut([(1, 2)])
        assert live.recv(1) == b"", "a cut closes the live connection"
        live.close()
        assert _round_trip_or_closed(via_proxy) == b"", "a new connection is closed at once"
        network.heal()
        assert _round_trip(via_proxy) == b"ping"
        assert network.unsupported("loss") is not None
        assert network.unsupported("partition") is None
        server.close()
    finally:
        assert network.close() == []


def test_campaign_table_counts_verdicts() -> None:
    rows = [
        RunSummary(0, 5, "kill", 0, "valid", "VALID: ...", "tcp-proxy", 100, 30.0),
        RunSummary(1, 6, "kill,partition", 1, "INVALID", "INVALID: x", "netns", 90, 31.0),
    ]
    table = render(rows)
    assert "kill,partition" in table and "totals: INVALID 1, valid 1" in table


def test_the_default_campaign_rotates_through_every_nemesis_but_delay() -> None:
    used = {kind for combo in DEFAULT_COMBOS for kind in parse_kinds(combo)}
    assert used == set(KINDS) - {"delay"}
    assert nodes_for("member", 3) == 5
    assert nodes_for("kill,member:one", 3) == 5
    assert nodes_for("kill,partition", 3) == 3
    assert nodes_for("kill", 5) == 5


class _LeaderlessUntilRefreshed:
    """A consumer whose Metadata cache names no leader until Metadata is asked again: what
    librdkafka's watermark query does (a local _UNKNOWN_PARTITION, no refresh of its own)."""

    def __init__(self) -> None:
        self.refreshed = False
        self.queries = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        self.queries += 1
        if not self.refreshed:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return 0, 42

    def list_topics(self, topic: str, timeout: float) -> None:
        self.refreshed = True


def test_the_final_read_asks_for_metadata_after_a_leaderless_answer() -> None:
    spec = WorkerSpec(
        role="final", process=0, bootstrap="", topic="t", partitions=1, seed=0, output="",
        end_monotonic_ns=0,
    )  # fmt: skip
    consumer = _LeaderlessUntilRefreshed()
    assert _high_watermarks(spec, consumer) == {0: 42}  # type: ignore[arg-type]
    assert consumer.queries == 2
