"""Assertions that stay on in production (`assert` vanishes under `python -O`)."""


class InvariantViolation(AssertionError):
    """Something that must never happen happened: the process's state can't be trusted."""


def invariant(condition: bool, message: str) -> None:
    """Raise InvariantViolation with `message` unless `condition` holds."""
    if not condition:
        raise InvariantViolation(message)
