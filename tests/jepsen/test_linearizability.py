"""The linearizability checker on known-good and known-bad histories of both models."""

import random
import time

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jepsen_like.checkers import Verdict
from jepsen_like.history import Entry, History, Poll, Read, Type
from jepsen_like.linearizability import (
    UNKNOWN,
    Budget,
    LinOp,
    check_history,
    check_operations,
)
from jepsen_like.models import APPEND, READ, WRITE, LogModel, RegisterModel
from jepsen_like.synthetic import Script, log_history, register_history, simulate_queue

LOG = LogModel()
REGISTER = RegisterModel()
PROPERTY_BUDGET = Budget(max_states=200_000, time_s=5.0)
"""A failing example should fail fast rather than stall shrinking; these histories are small."""


def append(value: str, offset: object, start: int, end: int | None, key: str = "k") -> LinOp:
    return LinOp(key, (APPEND, value), offset, start, end)


def read(offset: int, value: object, start: int, end: int, key: str = "k") -> LinOp:
    return LinOp(key, (READ, (offset,)), (value,), start, end)


def write(value: int, start: int, end: int | None, key: str = "k") -> LinOp:
    return LinOp(key, (WRITE, value), None, start, end)


def get(value: object, start: int, end: int, key: str = "k") -> LinOp:
    return LinOp(key, (READ,), value, start, end)


def verdict(ops: list[LinOp], model: object) -> Verdict:
    return check_operations(ops, model).verdict


# --- the log model -------------------------------------------------------------------


def test_sequential_log_is_linearizable() -> None:
    ops = [append("a", 0, 0, 1), append("b", 1, 2, 3), read(1, "b", 4, 5), read(2, None, 6, 7)]
    assert verdict(ops, LOG) is Verdict.VALID


def test_concurrent_appends_may_land_in_either_order() -> None:
    ops = [append("a", 1, 0, 10), append("b", 0, 1, 11), read(0, "b", 12, 13)]
    assert verdict(ops, LOG) is Verdict.VALID


def test_read_concurrent_with_append_may_or_may_not_see_it() -> None:
    for seen in ("a", None):
        assert verdict([append("a", 0, 0, 10), read(0, seen, 5, 15)], LOG) is Verdict.VALID


def test_stale_read_after_acknowledged_append_is_not_linearizable() -> None:
    ops = [append("a", 0, 0, 10), read(0, None, 20, 30)]
    assert verdict(ops, LOG) is Verdict.INVALID


def test_reading_the_future_is_not_linearizable() -> None:
    ops = [read(0, "a", 0, 10), append("a", 0, 20, 30)]
    assert verdict(ops, LOG) is Verdict.INVALID


def test_once_seen_a_record_cannot_unhappen() -> None:
    ops = [append("a", 0, 0, 100), read(0, "a", 10, 20), read(0, None, 30, 40)]
    assert verdict(ops, LOG) is Verdict.INVALID


def test_acknowledged_offset_must_match_the_order() -> None:
    ops = [append("a", 0, 0, 10), append("b", 0, 20, 30)]
    assert verdict(ops, LOG) is Verdict.INVALID


def test_indeterminate_append_may_or_may_not_take_effect() -> None:
    took_effect = [append("a", UNKNOWN, 0, None), read(0, "a", 50, 60)]
    assert verdict(took_effect, LOG) is Verdict.VALID
    did_not = [append("a", UNKNOWN, 0, None), append("b", 0, 10, 20), read(0, "b", 50, 60)]
    assert verdict(did_not, LOG) is Verdict.VALID
    too_early = [read(0, "a", 0, 5), append("a", UNKNOWN, 10, None)]
    assert verdict(too_early, LOG) is Verdict.INVALID


def test_recorded_indeterminate_send_may_land_late_but_not_on_a_claimed_offset() -> None:
    script = Script().send(0, "t/0", "maybe", None, Type.INFO).send(1, "t/0", "b", 0)
    script.poll(5, {"t/0": [(0, "b"), (1, "maybe")]})
    assert check_history(script.history(), LOG).valid
    script = Script().send(0, "t/0", "maybe", None, Type.INFO).send(1, "t/0", "b", 0)
    script.poll(5, {"t/0": [(0, "maybe")]})
    assert check_history(script.history(), LOG).verdict is Verdict.INVALID


def test_a_read_of_a_failed_send_is_not_linearizable() -> None:
    script = Script().send(0, "t/0", "a", 0).send(0, "t/0", "gone", None, Type.FAIL)
    script.poll(5, {"t/0": [(0, "a"), (1, "gone")]})
    result = check_history(script.history(), LOG)
    assert result.verdict is Verdict.INVALID
    (anomaly,) = result.to_check_result().anomalies
    assert anomaly.kind == "not-linearizable"
    assert anomaly.key == "t/0"
    assert any(op.f == "poll" for op in anomaly.operations)


# --- the register model --------------------------------------------------------------


def test_register_read_your_write() -> None:
    assert verdict([write(1, 0, 10), get(1, 20, 30)], REGISTER) is Verdict.VALID
    assert verdict([get(None, 0, 5), write(1, 10, 20), get(0, 30, 40)], REGISTER) is (
        Verdict.INVALID
    )


def test_register_concurrent_reads_must_agree_on_one_order() -> None:
    """Knossos's classic: once a read saw the new value, a later read cannot see the old."""
    ops = [write(0, 0, 5), write(1, 10, 100), get(1, 20, 30), get(0, 40, 50)]
    assert verdict(ops, REGISTER) is Verdict.INVALID
    ops = [write(0, 0, 5), write(1, 10, 100), get(0, 20, 30), get(1, 40, 50)]
    assert verdict(ops, REGISTER) is Verdict.VALID


def test_register_indeterminate_write_stays_open() -> None:
    ops = [write(1, 0, None), get(None, 10, 20), get(1, 1_000, 1_010), get(1, 2_000, 2_010)]
    assert verdict(ops, REGISTER) is Verdict.VALID
    ops = [write(1, 0, None), get(1, 10, 20), get(None, 30, 40)]
    assert verdict(ops, REGISTER) is Verdict.INVALID


def test_committed_offsets_from_a_recorded_history() -> None:
    script = Script().commit(0, "g", "t/0", 3).fetch_committed(1, "g", "t/0", 3)
    script.commit(0, "g", "t/0", 5, Type.FAIL).fetch_committed(1, "g", "t/0", 3)
    assert check_history(script.history(), REGISTER).valid
    script.fetch_committed(1, "g", "t/0", 5)
    result = check_history(script.history(), REGISTER)
    assert result.verdict is Verdict.INVALID
    assert [p.key for p in result.failing()] == ["g@t/0"]


def test_many_unread_indeterminate_commits_do_not_blow_up_the_search() -> None:
    """Each open write would double the orders to try; unread ones are left out exactly."""
    script = Script()
    for offset in range(40):
        script.commit(offset % 4, "g", "t/0", 1_000 + offset, Type.INFO)
    script.commit(9, "g", "t/0", 5).fetch_committed(9, "g", "t/0", 5)
    assert check_history(script.history(), REGISTER).valid
    script.commit(9, "g", "t/0", 6).fetch_committed(9, "g", "t/0", 5)  # stale read
    started = time.monotonic()
    assert check_history(script.history(), REGISTER).verdict is Verdict.INVALID
    assert time.monotonic() - started < 5.0


def test_read_indeterminate_commit_may_land_late() -> None:
    script = Script().commit(0, "g", "t/0", 7, Type.INFO).commit(1, "g", "t/0", 3)
    script.fetch_committed(2, "g", "t/0", 3).fetch_committed(2, "g", "t/0", 7)
    assert check_history(script.history(), REGISTER).valid
    script.fetch_committed(2, "g", "t/0", 3)
    assert check_history(script.history(), REGISTER).verdict is Verdict.INVALID


# --- P-compositionality, budgets and witnesses ---------------------------------------


def test_read_of_a_value_nobody_wrote_in_time_fails_without_searching() -> None:
    ops = [read(0, "a", 0, 10), append("a", 0, 20, 30), append("b", 1, 5, 15)]
    result = check_operations(ops, LOG)
    assert result.verdict is Verdict.INVALID
    (partition,) = result.partitions
    assert partition.states == 0
    assert partition.witness is not None
    assert partition.witness.blocking == read(0, "a", 0, 10)
    assert append("b", 1, 5, 15) in partition.witness.pending
    result = check_operations([write(1, 20, 30), get(1, 0, 10)], REGISTER)
    assert result.verdict is Verdict.INVALID
    assert result.partitions[0].states == 0


def test_violation_in_one_partition_is_found_and_named() -> None:
    good = [append("a", 0, 0, 10, "t/0"), read(0, "a", 20, 30, "t/0")]
    bad = [append("x", 0, 0, 10, "t/1"), read(0, "y", 20, 30, "t/1")]
    other = [append("z", 0, 5, 15, "t/2")]
    result = check_operations([*good, *bad, *other], LOG)
    assert result.verdict is Verdict.INVALID
    assert [p.key for p in result.partitions] == ["t/0", "t/1", "t/2"]
    assert [p.key for p in result.failing()] == ["t/1"]
    witness = result.failing()[0].witness
    assert witness is not None
    assert read(0, "y", 20, 30, "t/1") in (witness.blocking, *witness.pending)


def test_exhausted_budget_is_unknown_and_says_so() -> None:
    # Many concurrent reads that all commute: exponentially many partial orders.
    ops = [append("a", 0, 0, 1)] + [read(0, "a", 2, 1_000) for _ in range(30)]
    ops.append(read(0, None, 2_000, 2_010))  # stale, but only an exhaustive search shows it
    result = check_operations(ops, LOG, Budget(max_states=500))
    assert result.verdict is Verdict.UNKNOWN
    assert not result.valid
    assert "state budget of 500 exceeded" in result.partitions[0].reason
    check = result.to_check_result()
    assert check.verdict is Verdict.UNKNOWN and not check.valid
    assert check.kinds() == {"linearizability-unknown"}
    timed = check_operations(ops, LOG, Budget(time_s=0.0))
    assert timed.verdict is Verdict.UNKNOWN


def test_simulated_queue_run_is_linearizable_under_both_models() -> None:
    history = History.from_entries(simulate_queue(3, steps=600))
    assert check_history(history, LOG).valid
    assert check_history(history, REGISTER).valid


def test_a_few_thousand_operations_check_in_seconds() -> None:
    history = History.from_entries(log_history(random.Random(5), 3_000, window_ns=400))
    started = time.monotonic()
    result = check_history(history, LOG)
    assert result.valid
    assert result.partitions[0].operations == 3_000
    assert time.monotonic() - started < 10.0


# --- property tests ------------------------------------------------------------------


def _mutate_one_read(entries: list[Entry], rng: random.Random) -> tuple[list[Entry], int] | None:
    """Replace one value some read returned with a value nobody ever sent."""
    candidates = [
        i
        for i, entry in enumerate(entries)
        if entry.type is Type.OK
        and (
            (isinstance(entry.value, Poll) and entry.value.reads)
            or (isinstance(entry.value, Read) and entry.value.value is not None)
        )
    ]
    if not candidates:
        return None
    index = rng.choice(candidates)
    entry = entries[index]
    if isinstance(entry.value, Read):
        mutated = attrs.evolve(entry.value, value="phantom")
    else:
        tp, records = entry.value.reads[0]
        position = rng.randrange(len(records))
        records = tuple(
            (offset, "phantom" if i == position else value)
            for i, (offset, value) in enumerate(records)
        )
        mutated = Poll(((tp, records), *entry.value.reads[1:]))
    doctored = list(entries)
    doctored[index] = attrs.evolve(entry, value=mutated)
    return doctored, index


def _swap_one_read(entries: list[Entry], rng: random.Random) -> list[Entry] | None:
    """Make one poll return, at an offset an ok send pinned, a real value acknowledged at
    another offset: provably wrong, yet nothing a shortcut can see; only the search."""
    pinned: dict[tuple[str, int], object] = {}
    for entry in entries:
        if entry.type is Type.OK and entry.f == "send":
            pinned[(entry.value.tp, entry.value.offset)] = entry.value.value
    choices = []
    for i, entry in enumerate(entries):
        if entry.type is Type.OK and isinstance(entry.value, Poll):
            for tp, records in entry.value.reads:
                for position, (offset, value) in enumerate(records):
                    others = [
                        v for (t, o), v in pinned.items() if t == tp and o != offset and v != value
                    ]
                    if (tp, offset) in pinned and others:
                        choices.append((i, tp, position, others))
    if not choices:
        return None
    index, tp, position, others = rng.choice(choices)
    entry = entries[index]
    reads = []
    for t, records in entry.value.reads:
        if t == tp:
            offset = records[position][0]
            records = (*records[:position], (offset, rng.choice(others)), *records[position + 1 :])
        reads.append((t, records))
    doctored = list(entries)
    doctored[index] = attrs.evolve(entry, value=Poll(tuple(reads)))
    return doctored


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(2, 150), st.integers(0, 500))
def test_a_real_value_read_at_the_wrong_offset_is_caught_by_the_search(
    seed: int, operations: int, window_ns: int
) -> None:
    rng = random.Random(seed)
    entries = log_history(rng, operations, ["t/0"], window_ns, 0.1)
    doctored = _swap_one_read(entries, rng)
    if doctored is None:
        return
    result = check_history(History.from_entries(doctored), LOG, PROPERTY_BUDGET)
    assert result.verdict is Verdict.INVALID


simulations = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32),
        "operations": st.integers(1, 120),
        "window_ns": st.integers(0, 600),
        "partitions": st.integers(1, 3),
        "indeterminate": st.sampled_from([0.0, 0.1, 0.3]),
    }
)


@settings(max_examples=60, deadline=None)
@given(simulations)
def test_simulated_log_histories_are_linearizable_and_one_bad_read_is_caught(
    sim: dict,
) -> None:
    rng = random.Random(sim["seed"])
    tps = [f"t/{p}" for p in range(sim["partitions"])]
    entries = log_history(rng, sim["operations"], tps, sim["window_ns"], sim["indeterminate"])
    assert check_history(History.from_entries(entries), LOG, PROPERTY_BUDGET).valid
    mutated = _mutate_one_read(entries, rng)
    if mutated is None:
        return
    doctored, index = mutated
    result = check_history(History.from_entries(doctored), LOG, PROPERTY_BUDGET)
    assert result.verdict is Verdict.INVALID
    bad_tp = next(tp for tp, records in _reads_of(doctored[index]) if _has_phantom(records))
    assert bad_tp in {p.key for p in result.failing()}


def _reads_of(entry: Entry) -> list:
    if isinstance(entry.value, Read):
        return [(entry.value.tp, ((entry.value.offset, entry.value.value),))]
    return list(entry.value.reads)


def _has_phantom(records: tuple) -> bool:
    return any(value == "phantom" for _, value in records)


@settings(max_examples=60, deadline=None)
@given(simulations)
def test_simulated_register_histories_are_linearizable_and_one_bad_read_is_caught(
    sim: dict,
) -> None:
    rng = random.Random(sim["seed"])
    keys = [("g", f"t/{p}") for p in range(sim["partitions"])]
    entries = register_history(rng, sim["operations"], keys, sim["window_ns"], sim["indeterminate"])
    assert check_history(History.from_entries(entries), REGISTER, PROPERTY_BUDGET).valid
    fetches = [i for i, e in enumerate(entries) if e.type is Type.OK and e.f == "fetch_committed"]
    if not fetches:
        return
    index = rng.choice(fetches)
    doctored = list(entries)
    invented = attrs.evolve(entries[index].value, offset=1_000_000)  # never committed
    doctored[index] = attrs.evolve(entries[index], value=invented)
    result = check_history(History.from_entries(doctored), REGISTER, PROPERTY_BUDGET)
    assert result.verdict is Verdict.INVALID
    assert f"g@{invented.tp}" in {p.key for p in result.failing()}


@pytest.mark.parametrize("seed", range(3))
def test_mutated_large_history_is_found_quickly(seed: int) -> None:
    rng = random.Random(seed)
    entries = log_history(rng, 2_000, window_ns=400, indeterminate_probability=0.1)
    mutated = _mutate_one_read(entries, rng)
    assert mutated is not None
    started = time.monotonic()
    result = check_history(History.from_entries(mutated[0]), LOG)
    assert result.verdict is Verdict.INVALID
    assert time.monotonic() - started < 10.0
