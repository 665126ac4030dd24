"""Each queue checker passes a correct history and names the one anomaly injected into it."""

import attrs
import pytest

from jepsen_like.checkers import (
    CheckResult,
    Verdict,
    check_aborted_reads,
    check_committed_offsets,
    check_duplicates,
    check_inconsistent_offsets,
    check_lost_writes,
    check_poll_order,
    check_queue,
    check_send_order,
    check_unseen,
)
from jepsen_like.history import Commit, F, History, Phase, Poll, Type
from jepsen_like.synthetic import Script, simulate_queue

A = "t/0"
B = "t/1"


def _only(result: CheckResult, kind: str) -> None:
    assert result.verdict is Verdict.INVALID
    assert result.kinds() == {kind}
    assert not result.valid
    for anomaly in result.anomalies:
        assert anomaly.operations, "every anomaly must carry the operations that show it"
        assert anomaly.explanation


def _produced(script: Script, values: int, tp: str = A) -> Script:
    for offset in range(values):
        script.send(0, tp, f"{tp}:{offset}", offset)
    return script


@pytest.mark.parametrize("seed", range(6))
def test_simulated_correct_histories_pass_every_checker(seed: int) -> None:
    history = History.from_entries(simulate_queue(seed, steps=300))
    for result in check_queue(history):
        assert result.valid, (result.checker, result.anomalies[:3])
        assert result.anomalies == ()


def test_checkers_see_the_simulated_operations() -> None:
    """Guards against a vacuous pass: the simulation really sends, polls and commits."""
    history = History.from_entries(simulate_queue(1, steps=300))
    lost = check_lost_writes(history)
    assert lost.details["acknowledged_sends"] > 20
    assert lost.details["final_phase"] is True
    assert any(op.f is F.COMMIT for op in history.operations)
    assert any(
        op.type is Type.OK and op.value.offset is not None for op in history.by_f(F.FETCH_COMMITTED)
    )


def test_lost_write_below_a_later_read() -> None:
    script = _produced(Script(), 3)
    script.poll(5, {A: [(0, "t/0:0"), (2, "t/0:2")]})
    result = check_lost_writes(script.history())
    _only(result, "lost-write")
    (anomaly,) = result.anomalies
    assert anomaly.details["offset"] == 1
    assert [op.f for op in anomaly.operations] == ["send", "poll"]


def test_unread_write_above_every_read_is_lost_only_with_a_final_phase() -> None:
    script = _produced(Script(), 2)
    script.poll(5, {A: [(0, "t/0:0")]})
    assert check_lost_writes(script.history()).valid
    script.poll(5, {A: []}, phase=Phase.FINAL)
    result = check_lost_writes(script.history())
    _only(result, "lost-write")
    assert result.anomalies[0].details["value"] == "t/0:1"


def test_a_write_read_once_and_then_gone_from_the_log_is_lost() -> None:
    """Seen in chaos run 14004: a committed entry was read by two consumers, then
    overwritten after an election the replica that had lost it to disk damage voted in;
    the final phase read across its offset and found a NOOP there."""
    script = _produced(Script(), 3)
    script.poll(5, {A: [(0, "t/0:0"), (1, "t/0:1"), (2, "t/0:2")]})
    assert check_lost_writes(script.history()).valid
    script.poll(6, {A: [(0, "t/0:0"), (2, "t/0:2")]}, phase=Phase.FINAL)
    result = check_lost_writes(script.history())
    _only(result, "lost-write")
    (anomaly,) = result.anomalies
    assert anomaly.details == {"value": "t/0:1", "offset": 1, "read_before": True}
    assert [op.f for op in anomaly.operations] == ["send", "poll"]


def test_lost_write_found_in_a_simulated_history() -> None:
    entries = simulate_queue(2, steps=300)
    history = History.from_entries(entries)
    victim = next(op for op in history.by_f(F.SEND) if op.type is Type.OK)
    doctored = []
    for entry in entries:
        if entry.type is Type.OK and isinstance(entry.value, Poll):
            reads = tuple(
                (tp, tuple(r for r in rs if (tp, r[1]) != (victim.value.tp, victim.value.value)))
                for tp, rs in entry.value.reads
            )
            entry = attrs.evolve(entry, value=Poll(reads))
        doctored.append(entry)
    result = check_lost_writes(History.from_entries(doctored))
    _only(result, "lost-write")
    assert result.anomalies[0].details["value"] == victim.value.value


def test_duplicate_value_at_two_offsets() -> None:
    script = _produced(Script(), 2)
    script.poll(5, {A: [(0, "t/0:0"), (1, "t/0:1"), (2, "t/0:0")]})
    result = check_duplicates(script.history())
    _only(result, "duplicate")
    assert result.anomalies[0].details["offsets"] == [0, 2]
    assert check_duplicates(_produced(Script(), 3).history()).valid


def test_two_values_at_one_offset() -> None:
    script = _produced(Script(), 2)
    script.poll(5, {A: [(0, "t/0:0"), (1, "intruder")]})
    result = check_inconsistent_offsets(script.history())
    _only(result, "inconsistent-offset")
    assert result.anomalies[0].details["offset"] == 1
    assert set(result.anomalies[0].details["values"]) == {"intruder", "t/0:1"}
    assert len(result.anomalies[0].operations) == 2


def test_two_send_acknowledgements_at_one_offset() -> None:
    script = Script().send(0, A, "x", 0).send(1, A, "y", 0)
    _only(check_inconsistent_offsets(script.history()), "inconsistent-offset")


def _read_all(script: Script, process: int, upto: int) -> Script:
    return script.poll(process, {A: [(o, f"t/0:{o}") for o in range(upto)]})


def test_consecutive_polls_that_go_backwards() -> None:
    script = _produced(Script(), 4).assign(5, [A])
    script.poll(5, {A: [(0, "t/0:0"), (1, "t/0:1"), (2, "t/0:2")]})
    script.poll(5, {A: [(1, "t/0:1"), (2, "t/0:2"), (3, "t/0:3")]})
    result = check_poll_order(script.history())
    _only(result, "nonmonotonic-poll")
    assert [op.f for op in result.anomalies[0].operations] == ["poll", "poll"]


def test_consecutive_polls_that_skip_an_offset() -> None:
    script = _produced(Script(), 4).assign(5, [A])
    script.poll(5, {A: [(0, "t/0:0")]})
    script.poll(5, {A: [(2, "t/0:2"), (3, "t/0:3")]})
    _read_all(script, 6, 4)  # another consumer proves offset 1 exists
    result = check_poll_order(script.history())
    _only(result, "poll-skip")
    assert result.anomalies[0].details["skipped_offsets"] == [1]


def test_a_gap_nobody_observed_is_not_a_skip() -> None:
    script = Script().send(0, A, "a", 0).send(0, A, "c", 2).assign(5, [A])
    script.poll(5, {A: [(0, "a")]}).poll(5, {A: [(2, "c")]})
    assert check_poll_order(script.history()).valid


def test_skips_and_rewinds_inside_one_poll() -> None:
    script = _produced(Script(), 4).assign(5, [A])
    script.poll(5, {A: [(0, "t/0:0"), (2, "t/0:2")]})
    _read_all(script, 6, 4)
    _only(check_poll_order(script.history()), "int-poll-skip")
    script = _produced(Script(), 4).assign(5, [A])
    script.poll(5, {A: [(1, "t/0:1"), (0, "t/0:0")]})
    _only(check_poll_order(script.history()), "int-nonmonotonic-poll")


@pytest.mark.parametrize(
    "rebalance",
    ["assign-elsewhere-and-back", "seek-to-beginning", "rebalanced-in-poll", "crash"],
)
def test_rebalances_allow_rewinds(rebalance: str) -> None:
    script = _produced(Script(), 3).assign(5, [A])
    _read_all(script, 5, 3)
    if rebalance == "assign-elsewhere-and-back":
        script.assign(5, [B]).assign(5, [A])
    elif rebalance == "seek-to-beginning":
        script.assign(5, [A], seek_to_beginning=True)
    elif rebalance == "crash":
        script.crash(5).assign(5, [A])
    rebalanced = frozenset({A}) if rebalance == "rebalanced-in-poll" else frozenset()
    script.poll(5, {A: [(0, "t/0:0"), (1, "t/0:1")]}, rebalanced=rebalanced)
    assert check_poll_order(script.history()).valid


def test_reassigning_the_same_partition_keeps_the_position() -> None:
    """Jepsen's rule: an assignment only forgets partitions it no longer includes."""
    script = _produced(Script(), 3).assign(5, [A])
    _read_all(script, 5, 3)
    script.assign(5, [A, B])
    script.poll(5, {A: [(0, "t/0:0")]})
    _only(check_poll_order(script.history()), "nonmonotonic-poll")


def test_polls_of_different_processes_are_independent() -> None:
    script = _produced(Script(), 3)
    _read_all(script, 5, 3)
    _read_all(script, 6, 3)
    assert check_poll_order(script.history()).valid


def test_nonmonotonic_sends_of_one_producer() -> None:
    script = Script().send(0, A, "a", 0).send(1, A, "b", 1).send(0, A, "c", 2)
    assert check_send_order(script.history()).valid
    script.send(1, A, "d", 1)
    result = check_send_order(script.history())
    _only(result, "nonmonotonic-send")
    assert result.anomalies[0].details == {"from_offset": 1, "to_offset": 1}


def test_unseen_counts_over_time_and_fails_when_writes_stay_unseen() -> None:
    script = _produced(Script(), 3)
    result = check_unseen(script.history())
    _only(result, "unseen")
    assert result.details["final_unseen"] == {A: 3}
    assert [point["unseen"].get(A, 0) for point in result.details["series"]] == [1, 2, 3]
    _read_all(script, 5, 3)
    result = check_unseen(script.history())
    assert result.valid
    assert result.details["series"][-1]["unseen"] == {}


def test_reading_a_failed_send_is_an_aborted_read() -> None:
    script = Script().send(0, A, "ok", 0).send(0, A, "failed", None, Type.FAIL)
    script.poll(5, {A: [(0, "ok"), (1, "failed")]})
    result = check_aborted_reads(script.history())
    _only(result, "aborted-read")
    assert [op.type for op in result.anomalies[0].operations] == [Type.FAIL, Type.OK]


def test_reading_an_indeterminate_send_is_fine() -> None:
    script = Script().send(0, A, "maybe", None, Type.INFO)
    script.poll(5, {A: [(0, "maybe")]})
    assert check_aborted_reads(script.history()).valid


def test_reading_a_value_nobody_sent_is_a_phantom_read() -> None:
    script = Script().send(0, A, "real", 0).poll(5, {A: [(0, "real"), (1, "ghost")]})
    _only(check_aborted_reads(script.history()), "phantom-read")


def test_committed_offsets_may_move_forward() -> None:
    script = Script().fetch_committed(1, "g", A, None).commit(0, "g", A, 3)
    script.fetch_committed(1, "g", A, 3).commit(0, "g", A, 7).fetch_committed(1, "g", A, 7)
    assert check_committed_offsets(script.history()).valid


def test_committed_offset_going_backwards() -> None:
    script = Script().commit(0, "g", A, 3).commit(0, "g", A, 7)
    script.fetch_committed(1, "g", A, 3)
    result = check_committed_offsets(script.history())
    _only(result, "committed-offset-regressed")
    assert result.anomalies[0].details == {"floor": 7, "fetched": 3}


def test_committed_offset_forgotten_after_a_fetch_saw_it() -> None:
    script = Script().commit(0, "g", A, 3, Type.INFO).fetch_committed(1, "g", A, 3)
    script.fetch_committed(1, "g", A, None)
    _only(check_committed_offsets(script.history()), "committed-offset-regressed")


def test_a_concurrent_lower_commit_excuses_a_rewind() -> None:
    script = Script().commit(0, "g", A, 7)
    script.recorder.invoke(2, F.COMMIT, Commit("g", A, 3))  # never returns
    script.fetch_committed(1, "g", A, 3)
    assert check_committed_offsets(script.history()).valid


def test_invented_committed_offset() -> None:
    script = Script().commit(0, "g", A, 3).fetch_committed(1, "g", A, 4)
    result = check_committed_offsets(script.history())
    _only(result, "invented-committed-offset")
    script = Script().commit(0, "g", A, 4, Type.FAIL).fetch_committed(1, "g", A, 4)
    result = check_committed_offsets(script.history())
    _only(result, "invented-committed-offset")
    assert [op.type for op in result.anomalies[0].operations] == [Type.FAIL, Type.OK]


def test_committed_offsets_are_per_group_and_partition() -> None:
    script = Script().commit(0, "g", A, 7).commit(0, "h", A, 2).commit(0, "g", B, 1)
    script.fetch_committed(1, "h", A, 2).fetch_committed(1, "g", B, 1)
    assert check_committed_offsets(script.history()).valid
