"""Helpers for tests of code that uses the transport (like `trio.testing`)."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from raftlog.invariant import invariant
from raftlog.transport.channels import Channel
from raftlog.transport.errors import NoSuchMethod
from raftlog.transport.limits import TransportLimits
from raftlog.transport.transport import Transport

CallHandler = Callable[[int, bytes], Awaitable[bytes]]


@attrs.define(eq=False)
class RecordingHandler:
    """Keeps every message received, per (peer, channel), and serves calls from a table."""

    methods: dict[str, CallHandler] = attrs.field(factory=dict)
    received: collections.defaultdict[tuple[int, Channel], list[bytes]] = attrs.field(
        factory=lambda: collections.defaultdict(list)
    )
    on_receive: Callable[[int, Channel, bytes], None] | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def on_message(self, from_peer: int, channel: Channel, payload: bytes) -> None:
        self.received[(from_peer, channel)].append(payload)
        if self.on_receive is not None:
            self.on_receive(from_peer, channel, payload)
        self._changed.set()

    async def on_call(self, from_peer: int, method: str, payload: bytes) -> bytes:
        handler = self.methods.get(method)
        if handler is None:
            raise NoSuchMethod(method)
        return await handler(from_peer, payload)

    async def wait_count(self, from_peer: int, channel: Channel, count: int) -> list[bytes]:
        """Wait until `count` messages arrived from a peer on a channel; return them."""
        while len(self.received[(from_peer, channel)]) < count:
            self._changed = trio.Event()
            await self._changed.wait()
        return self.received[(from_peer, channel)]


@asynccontextmanager
async def open_cluster(
    node_ids: list[int],
    *,
    limits: TransportLimits | dict[int, TransportLimits] | None = None,
    handlers: dict[int, RecordingHandler] | None = None,
) -> AsyncIterator[dict[int, Transport]]:
    """Run one transport per node id on 127.0.0.1, all knowing each other; stop on exit.

    `limits` is one value for all nodes or one per node id (missing ids get defaults).
    """
    handlers = handlers or {}
    limits_by_node = (
        limits if isinstance(limits, dict) else dict.fromkeys(node_ids, limits or TransportLimits())
    )
    transports = {
        node_id: Transport(
            node_id=node_id,
            listen_host="127.0.0.1",
            listen_port=0,
            handler=handlers.setdefault(node_id, RecordingHandler()),
            limits=limits_by_node.get(node_id) or TransportLimits(),
        )
        for node_id in node_ids
    }
    async with trio.open_nursery() as nursery:
        for transport in transports.values():
            await nursery.start(transport.run)
        for transport in transports.values():
            for other in transports.values():
                if other is not transport:
                    port = other.bound_port
                    invariant(port is not None, "a started transport has a bound port")
                    transport.set_peer_address(other.node_id, "127.0.0.1", port)  # type: ignore[arg-type]
        yield transports
        nursery.cancel_scope.cancel()
