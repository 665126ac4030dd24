"""A peer whose process restarts on the same address is reconnected automatically."""

from __future__ import annotations

import trio

from raftlog.transport import Channel, Transport, TransportLimits
from raftlog.transport.testing import RecordingHandler

LIMITS = TransportLimits(reconnect_backoff_initial_s=0.02, reconnect_backoff_max_s=0.2)


async def _run_in_scope(
    transport: Transport,
    scopes: list[trio.CancelScope],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.CancelScope() as scope:
        scopes.append(scope)
        await transport.run(task_status=task_status)


def _node(node_id: int, port: int, handler: RecordingHandler) -> Transport:
    return Transport(
        node_id=node_id, listen_host="127.0.0.1", listen_port=port, handler=handler, limits=LIMITS
    )


def test_restarted_peer_on_the_same_port_is_reconnected() -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            scopes: list[trio.CancelScope] = []
            handler_1, handler_2 = RecordingHandler(), RecordingHandler()
            node_1, node_2 = _node(1, 0, handler_1), _node(2, 0, handler_2)

            async def answer(peer: int, body: bytes) -> bytes:
                return b"incarnation %d" % node_2_now.incarnation

            handler_2.methods["who"] = answer
            node_2_now = node_2
            await nursery.start(_run_in_scope, node_1, scopes)
            await nursery.start(_run_in_scope, node_2, scopes)
            port_2 = node_2.bound_port
            assert port_2 is not None
            node_1.set_peer_address(2, "127.0.0.1", port_2)
            with trio.fail_after(10):
                assert node_1.send_nowait(2, Channel.RAFT, b"before")
                await handler_2.wait_count(1, Channel.RAFT, 1)
                first = await node_1.call(2, "who", b"", 5.0)

            scopes[1].cancel()  # node 2's process "dies"
            with trio.fail_after(10):
                while node_1.statistics().peers[2].connected:
                    await trio.sleep(0.01)

            handler_2b = RecordingHandler(methods={"who": answer})
            node_2_now = _node(2, port_2, handler_2b)
            await nursery.start(_run_in_scope, node_2_now, scopes)
            # Node 1 reconnects on its own; messages sent meanwhile may be lost, so keep
            # sending (as Raft does) until one gets through.
            with trio.fail_after(10):
                sent = 0
                while not handler_2b.received[(1, Channel.RAFT)]:
                    node_1.send_nowait(2, Channel.RAFT, b"after %d" % sent)
                    sent += 1
                    await trio.sleep(0.02)
                second = await node_1.call(2, "who", b"", 5.0)
                # The restarted node answers over the connection node 1 dialled.
                assert node_2_now.send_nowait(1, Channel.HEARTBEAT, b"back")
                await handler_1.wait_count(2, Channel.HEARTBEAT, 1)
            assert first != second
            got = handler_2b.received[(1, Channel.RAFT)]
            assert got == sorted(got, key=lambda m: int(m.split()[1]))  # in order
            statistics = node_1.statistics().peers[2]
            assert statistics.connected and statistics.reconnects >= 1
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_stale_connection_is_replaced_by_a_newer_incarnation() -> None:
    """A peer that restarts before we notice the old connection died dials us itself."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            scopes: list[trio.CancelScope] = []
            handler_1 = RecordingHandler()
            node_1 = _node(1, 0, handler_1)
            await nursery.start(_run_in_scope, node_1, scopes)
            port_1 = node_1.bound_port
            assert port_1 is not None
            old = _node(2, 0, RecordingHandler())
            old.set_peer_address(1, "127.0.0.1", port_1)
            await nursery.start(_run_in_scope, old, scopes)
            with trio.fail_after(10):
                old.send_nowait(1, Channel.RAFT, b"old")
                await handler_1.wait_count(2, Channel.RAFT, 1)
            # The new process of node 2 comes up while the old one still holds its
            # connection: the newer incarnation must win on node 1.
            new = _node(2, 0, RecordingHandler())
            new.incarnation = old.incarnation + 1
            new.set_peer_address(1, "127.0.0.1", port_1)
            await nursery.start(_run_in_scope, new, scopes)
            with trio.fail_after(10):
                new.send_nowait(1, Channel.RAFT, b"new")
                await handler_1.wait_count(2, Channel.RAFT, 2)
                while old.statistics().peers[1].connected:
                    await trio.sleep(0.01)
            assert handler_1.received[(2, Channel.RAFT)] == [b"old", b"new"]
            # The old incarnation's connection is gone: it can't slip messages in.
            assert old.send_nowait(1, Channel.RAFT, b"zombie")
            await trio.sleep(0.2)
            assert handler_1.received[(2, Channel.RAFT)][-1] == b"new"
            nursery.cancel_scope.cancel()

    trio.run(main)
