"""The queue and consumer-group checkers. Each takes a History and returns a CheckResult."""

from __future__ import annotations

from jepsen_like.checkers.aborted import check_aborted_reads
from jepsen_like.checkers.committed import check_committed_offsets
from jepsen_like.checkers.duplicates import check_duplicates
from jepsen_like.checkers.lost import check_lost_writes
from jepsen_like.checkers.observed import Observed
from jepsen_like.checkers.offsets import check_inconsistent_offsets
from jepsen_like.checkers.order import check_poll_order, check_send_order
from jepsen_like.checkers.result import Anomaly, CheckResult, Verdict
from jepsen_like.checkers.unseen import check_unseen
from jepsen_like.history import History

__all__ = [
    "Anomaly",
    "CheckResult",
    "Verdict",
    "check_aborted_reads",
    "check_committed_offsets",
    "check_duplicates",
    "check_inconsistent_offsets",
    "check_lost_writes",
    "check_poll_order",
    "check_queue",
    "check_send_order",
    "check_unseen",
]


def check_queue(history: History) -> tuple[CheckResult, ...]:
    """Every non-linearizability checker, sharing one index of the observations."""
    observed = Observed.of(history)
    return (
        check_lost_writes(history, observed),
        check_duplicates(history, observed),
        check_inconsistent_offsets(history, observed),
        check_poll_order(history, observed),
        check_send_order(history, observed),
        check_aborted_reads(history, observed),
        check_unseen(history),
        check_committed_offsets(history),
    )
