"""The peer is a separate Python process: the transport works across processes."""

from __future__ import annotations

import os
import subprocess
import sys

import trio

from raftlog.transport import Channel, Transport
from raftlog.transport.testing import RecordingHandler

# Node 2 in a child process: echoes every message back on the same channel (over the
# connection node 1 dialled: it never learns node 1's address), serves "pid", and stops
# when its standard input closes.
CHILD = r"""
import os, sys, trio
from raftlog.transport import Transport

class Echo:
    transport = None
    def on_message(self, from_peer, channel, payload):
        self.transport.send_nowait(from_peer, channel, b"echo:" + payload)
    async def on_call(self, from_peer, method, payload):
        return str(os.getpid()).encode()

async def main():
    handler = Echo()
    transport = Transport(node_id=2, listen_host="127.0.0.1", listen_port=0, handler=handler)
    handler.transport = transport
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.run)
        print(transport.bound_port, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()

trio.run(main)
"""


def test_messages_and_calls_cross_a_process_boundary() -> None:
    async def main() -> None:
        child = await trio.lowlevel.open_process(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            with trio.fail_after(20):
                line = b""
                while not line.endswith(b"\n"):
                    chunk = await child.stdout.receive_some(100)
                    assert chunk, "child exited before listening"
                    line += chunk
                handler = RecordingHandler()
                transport = Transport(
                    node_id=1,
                    listen_host="127.0.0.1",
                    listen_port=0,
                    handler=handler,
                    peer_addresses={2: ("127.0.0.1", int(line))},
                )
                async with trio.open_nursery() as nursery:
                    await nursery.start(transport.run)
                    for index in range(200):
                        assert transport.send_nowait(2, Channel.RAFT, b"%d" % index)
                    got = await handler.wait_count(2, Channel.RAFT, 200)
                    assert got == [b"echo:%d" % index for index in range(200)]
                    pid = await transport.call(2, "pid", b"", 5.0)
                    assert int(pid) == child.pid != os.getpid()
                    nursery.cancel_scope.cancel()
                await child.stdin.aclose()
                assert await child.wait() == 0
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()

    trio.run(main)
