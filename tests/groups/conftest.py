"""Group consumers in their own processes (`consumer_worker.py`), for tests that SIGKILL them.

The `group_workers` fixture starts workers and stops every one it started by PID at the
end of the test (SIGTERM, then SIGKILL), so no consumer outlives its test.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator

import attrs
import pytest

WORKER = pathlib.Path(__file__).with_name("consumer_worker.py")
STOP_GRACE_S = 20.0


@attrs.frozen
class Event:
    kind: str
    """R (read), C (committed next offset), F (commit failed)."""
    worker: str
    partition: int
    offset: int
    at: float


@attrs.define(eq=False)
class Worker:
    name: str
    events_path: pathlib.Path
    process: subprocess.Popen[bytes]

    def events(self) -> list[Event]:
        if not self.events_path.exists():
            return []
        found = []
        for line in self.events_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:  # a line cut by SIGKILL is incomplete; skip it
                kind, partition, offset, at = parts
                found.append(Event(kind, self.name, int(partition), int(offset), float(at)))
        return found

    def stop(self) -> None:
        """SIGTERM: the consumer closes and leaves its group."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash; the coordinator finds out when the session lapses."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@attrs.define(eq=False)
class WorkerPool:
    directory: pathlib.Path
    started: list[Worker] = attrs.field(factory=list)

    def start(
        self, library: str, bootstrap: str, group: str, topic: str, name: str, *options: str
    ) -> Worker:
        events_path = self.directory / f"{name}.events"
        with (self.directory / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, str(WORKER), library, bootstrap, group, topic,
                 str(events_path), *options],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = Worker(name, events_path, process)
        self.started.append(worker)
        return worker

    @staticmethod
    def events(workers: Iterable[Worker]) -> list[Event]:
        """Every event of these workers, in time order (one clock: one machine)."""
        return sorted((event for w in workers for event in w.events()), key=lambda e: e.at)

    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout_s: float,
        what: str,
        explain: Callable[[], str] = lambda: "",
    ) -> None:
        """Until `condition()`; on timeout fail with `explain()` and the workers' logs."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s} s waiting for {what}\n{explain()}\n{self.logs()}"
                )
            time.sleep(0.2)

    def logs(self) -> str:
        """The tail of every worker's output, for assertion messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
            for path in sorted(self.directory.glob("*.log"))
        )


@pytest.fixture
def group_workers(tmp_path: pathlib.Path) -> Iterator[WorkerPool]:
    directory = tmp_path / "workers"
    directory.mkdir()
    pool = WorkerPool(directory)
    try:
        yield pool
    finally:
        for worker in pool.started:
            worker.kill()
