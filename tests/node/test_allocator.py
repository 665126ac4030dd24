"""The allocator settings `raftlog serve` applies keep a node's big buffers out of fresh memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raftlog import native

# Buffers as a node makes them: a message joined from socket reads of up to 256 KiB,
# sixteen held at a time (entries waiting to be applied), the oldest let go.
_WORKLOAD = """
import collections, random, resource, sys
from raftlog import allocator
if sys.argv[1] == "tuned":
    assert allocator.tune_for_node()
rng = random.Random(1)
held = collections.deque(maxlen=16)
chunk = bytes(256 * 1024)
def work(count):
    for _ in range(count):
        held.append(b"".join(chunk[: rng.randrange(1, 256 * 1024)] for _ in range(4)))
work(200)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
work(2000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    completed = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, mode], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return int(completed.stdout)


def test_tuned_buffers_reuse_memory_instead_of_faulting_in_fresh_pages() -> None:
    default, tuned = _page_faults("default"), _page_faults("tuned")
    # About 2.5 GB pass through: by default thousands of pages are fresh each time.
    assert default > 2000
    assert tuned * 10 < default


def test_out_of_range_settings_are_refused_before_reaching_c() -> None:
    with pytest.raises(ValueError):
        native.tune_allocator(0, 1 << 20)
    with pytest.raises(ValueError):
        native.tune_allocator(1 << 20, 2**31)
    with pytest.raises(TypeError):
        native.tune_allocator(1.5, 1 << 20)  # type: ignore[arg-type]


def test_serve_logs_that_it_tuned_the_allocator(raftlog_node) -> None:
    assert "event=allocator_tuned applied=True" in raftlog_node.node(1).log_path.read_text()
