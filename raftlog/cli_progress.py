"""A one-line progress counter for long CLI commands.

Shown only when stderr is a terminal (scripts and pipes get clean output), rewritten in
place at most once a second, and erased when the command finishes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import attrs


@attrs.define
class Progress:
    what: str
    stream: TextIO = attrs.field(factory=lambda: sys.stderr)
    interval_s: float = 1.0
    _last_s: float = attrs.field(factory=time.monotonic)
    _shown: bool = False

    def update(self, count: int) -> None:
        if not self.stream.isatty():
            return
        now = time.monotonic()
        if now - self._last_s < self.interval_s:
            return
        self._last_s = now
        self.stream.write(f"\r{self.what}: {count:,}")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
