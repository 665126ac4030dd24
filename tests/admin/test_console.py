"""The console as a person sees it: headless Chromium loads a real node's console.

The DOM is dumped after the page's JavaScript has polled the node (virtual time lets the
fetches finish), and a screenshot must show something (not one flat colour).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from raftlog.testing import LocalCluster

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 900)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)


def _chromium(profile: pathlib.Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         "--virtual-time-budget=5000", *arguments],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


@pytest.fixture
def node_with_topic(tmp_path: pathlib.Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "raftlog", nodes=1) as cluster:
        b = ("--bootstrap", cluster.bootstrap)
        for command, stdin in (
            (("topic", "create", "console-orders", "--partitions", "2", *b), None),
            (("produce", "console-orders", "--key", "k", *b), "one\ntwo\nthree\n"),
            (("consume", "console-orders", "--group", "console-readers", "--count", "2", *b), None),
        ):
            result = subprocess.run(
                [sys.executable, "-m", "raftlog.cli", *command],
                input=stdin, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        yield cluster


def test_console_renders_nodes_topics_partitions_and_groups(
    node_with_topic: LocalCluster, tmp_path: pathlib.Path
) -> None:
    url = node_with_topic.node(1).admin_url + "/"
    dumped = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert 'data-loaded="true"' in dom, dom[:2000]
    assert '<tr class="node-row" data-node="1">' in dom
    assert node_with_topic.node(1).address in dom
    assert '<tr class="topic-row" data-topic="console-orders">' in dom
    assert 'data-partition="console-orders/0"' in dom
    assert 'data-partition="console-orders/1"' in dom
    assert '<tr class="group-row" data-group="console-readers">' in dom
    assert "controller leader" in dom
    assert ">ready<" in dom

    screenshot = tmp_path / "console.png"
    shot = _chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    with Image.open(screenshot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # None means more colours than the bound: certainly not blank.
    assert colours is None or len(colours) > 10, "the console screenshot is blank"
