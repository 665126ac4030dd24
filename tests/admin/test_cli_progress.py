"""The progress line of long CLI commands: only on a terminal, throttled, erased at the end."""

from __future__ import annotations

import io
import time

from raftlog.cli_progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_written_in_place_and_erased_on_a_terminal() -> None:
    terminal = _Terminal()
    progress = Progress("records read", stream=terminal, interval_s=0.0)
    progress.update(1)
    progress.update(1234)
    progress.done()
    assert terminal.getvalue() == "\rrecords read: 1\rrecords read: 1,234\r\x1b[K"


def test_progress_stays_silent_when_stderr_is_not_a_terminal() -> None:
    pipe = io.StringIO()
    progress = Progress("records read", stream=pipe, interval_s=0.0)
    progress.update(10)
    progress.done()
    assert pipe.getvalue() == ""


def test_progress_is_throttled() -> None:
    terminal = _Terminal()
    progress = Progress("records read", stream=terminal, interval_s=3600.0)
    # The first update is due, the next ones are not. Not 0.0: the monotonic clock may
    # count from boot, and a machine up for less than an interval would show nothing.
    progress._last_s = time.monotonic() - 2 * progress.interval_s
    for count in range(1, 1000):
        progress.update(count)
    assert terminal.getvalue().count("\r") == 1
