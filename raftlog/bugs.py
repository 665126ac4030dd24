"""Deliberate bugs, for the chaos suite's "proof it can fail" runs. Never set in production.

A chaos suite that never fails proves nothing: these switches break one guarantee each,
so a test can show the checkers catch the breakage. The node reads the switch once at
start-up (setting ``inject_bug``, usually from ``RAFTLOG_INJECT_BUG``) and refuses
unknown names. Each bug is one small code path guarded by ``active(Bug.X)`` and marked
``DELIBERATE BUG`` where it lives:

* ``ack-before-fsync`` (``replica/group.py``): entries count as persisted, and so are
  acknowledged and voted on, without the fdatasync.
* ``stale-vote`` (``replica/factory.py`` -> the Raft core's ``count_stale_votes``): votes
  granted to an earlier candidacy count again in the next one.
* ``fetch-above-commit`` (``partition/replica.py``): fetches serve the whole local log,
  past the high watermark, so a deposed leader hands out entries that get truncated.
* ``skip-idempotence`` (``partition/replica.py``): the producer-sequence check is skipped,
  so a retried batch is appended again.
"""

from __future__ import annotations

import enum


class Bug(enum.StrEnum):
    ACK_BEFORE_FSYNC = "ack-before-fsync"
    STALE_VOTE = "stale-vote"
    FETCH_ABOVE_COMMIT = "fetch-above-commit"
    SKIP_IDEMPOTENCE = "skip-idempotence"


class UnknownBug(ValueError):
    """A bug name that no switch has."""


_active: Bug | None = None

RAFT_TEST_BUGS: dict[Bug, str] = {Bug.STALE_VOTE: "count_stale_votes"}
"""Bugs that live in the pure Raft core, which has its own switch (``RaftConfig.test_bug``)."""


def parse(name: str | None) -> Bug | None:
    if name is None or name == "":
        return None
    try:
        return Bug(name)
    except ValueError:
        known = ", ".join(bug.value for bug in Bug)
        raise UnknownBug(f"unknown bug {name!r}; known: {known}") from None


def activate(name: str | None) -> Bug | None:
    """Switch one bug on for this process (None switches every bug off)."""
    global _active
    _active = parse(name)
    return _active


def active(bug: Bug) -> bool:
    return _active is bug


def raft_test_bug() -> str | None:
    """The Raft core's ``test_bug`` for the active bug, if it lives there."""
    return None if _active is None else RAFT_TEST_BUGS.get(_active)
