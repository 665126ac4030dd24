"""Assertions that stay on in production.

`assert` vanishes under `python -O`; the conditions checked here are the ones whose
failure means the program's own state is wrong, so they must never be skipped.
"""


class InvariantViolation(AssertionError):
    """The program's own state broke a rule it relies on: a bug, never bad input."""


def invariant(condition: bool, message: str) -> None:
    """Raise `InvariantViolation(message)` unless `condition` holds."""
    if not condition:
        raise InvariantViolation(message)
