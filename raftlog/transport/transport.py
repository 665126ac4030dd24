"""The node-to-node transport: one HTTP/2 connection per peer pair, four channels.

See the "Transport" section of ARCHITECTURE.md for the guarantees. In short:

- Messages to one peer on one channel arrive in order while a connection lives. When a
  connection is lost every message still queued for that peer is dropped (counted), and
  what was already written may or may not have arrived: Raft retries, the transport
  does not.
- Which connection survives when both nodes dial each other at once is decided by the
  same rule on both ends (`_prefers`), so they converge on one connection carrying both
  directions.
- Nothing waits on a slow peer unless asked to: `send_nowait` refuses when the bounded
  queue is full, `send` and `call` wait for room.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import random
import ssl
import time
import types
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from raftlog.invariant import invariant
from raftlog.logs import event
from raftlog.transport.channels import MESSAGE_CHANNELS, Channel
from raftlog.transport.connection import Connection
from raftlog.transport.errors import (
    NoSuchMethod,
    PeerUnavailable,
    ProtocolViolation,
    RpcError,
    RpcErrorCode,
    RpcTimeout,
    SameNodeId,
)
from raftlog.transport.framing import (
    RPC_OVERHEAD_BYTES_MAX,
    Payload,
    RpcFailure,
    RpcRequest,
    RpcResponse,
    decode_envelope,
    encode_failure,
    encode_request,
    encode_response,
)
from raftlog.transport.limits import TransportLimits, reconnect_delay_s
from raftlog.transport.queues import ChannelQueue
from raftlog.transport.session import (
    ANY_PEER,
    HelloAnswered,
    HelloReceived,
    HelloRefused,
    MessagesReceived,
    OutboundWindowOpened,
    PeerSaidGoodbye,
    Session,
    SessionEvent,
)
from raftlog.transport.statistics import ChannelStatistics, PeerStatistics, TransportStatistics


class MessageHandler(Protocol):
    """What the node plugs into the transport to receive."""

    def on_message(self, from_peer: int, channel: Channel, payload: bytes) -> None:
        """Called in the connection's reader task: must not block (hand off, don't work)."""

    async def on_call(self, from_peer: int, method: str, payload: bytes) -> bytes:
        """Serve one RPC; runs in its own task, cancelled at the caller's deadline.

        Raise NoSuchMethod for an unknown method; any other exception becomes
        RpcError(HANDLER_FAILED) at the caller.
        """
        ...


@attrs.define(eq=False)
class _PendingCall:
    method: str
    done: trio.Event = attrs.field(factory=trio.Event)
    result: bytes | None = None
    error: Exception | None = None

    def finish(self, result: bytes | None, error: Exception | None) -> None:
        if self.done.is_set():
            return
        self.result = result
        self.error = error
        self.done.set()


@attrs.define(eq=False)
class _Peer:
    peer_id: int
    queues: dict[Channel, ChannelQueue]
    outbound_call_slots: trio.Semaphore
    active: Connection | None = None
    calls: dict[int, _PendingCall] = attrs.field(factory=dict)
    inbound_calls_in_flight: int = 0
    dial_wanted: trio.Event = attrs.field(factory=trio.Event)
    dialer_scope: trio.CancelScope | None = None
    dialing: bool = False
    """An outbound attempt is under way (connecting or waiting for the hello answer)."""
    failed_attempts: int = 0
    unavailable_until_s: float = -math.inf
    last_failure: str = ""
    connections_established: int = 0
    connect_failures: int = 0
    messages_received: dict[Channel, int] = attrs.field(factory=lambda: dict.fromkeys(Channel, 0))
    bytes_received: dict[Channel, int] = attrs.field(factory=lambda: dict.fromkeys(Channel, 0))

    def has_work(self) -> bool:
        return bool(self.calls) or any(len(queue) for queue in self.queues.values())


@attrs.define(eq=False)
class _Identifying:
    """A dial to an address whose node id is unknown, until the hello answer names it."""

    host: str
    port: int
    done: trio.Event = attrs.field(factory=trio.Event)
    peer_id: int | None = None
    failure: str = ""
    same_id: bool = False
    """The acceptor refused the hello (421): to an `ANY_PEER` hello that means it has our id."""

    def finish(self, peer_id: int | None, failure: str) -> None:
        if not self.done.is_set():
            self.peer_id, self.failure = peer_id, failure
            self.done.set()


@attrs.define(eq=False)
class Transport:
    """This node's end of every node-to-node connection. Run it with `run` in a nursery."""

    node_id: int
    listen_host: str
    listen_port: int
    """0 picks a free port; read `bound_port` after `run` has started."""
    handler: MessageHandler
    peer_addresses: dict[int, tuple[str, int]] = attrs.field(factory=dict, converter=dict)
    limits: TransportLimits = attrs.field(factory=TransportLimits)
    server_ssl_context: ssl.SSLContext | None = None
    client_ssl_context: ssl.SSLContext | None = None
    jitter: Callable[[], float] = random.random
    """Source of back-off jitter in [0, 1); injected for determinism."""
    incarnation: int = attrs.field(factory=time.time_ns)
    """Grows across restarts of a node; tells a restarted peer's connection from a stale one."""
    bound_port: int | None = attrs.field(default=None, init=False)
    _peers: dict[int, _Peer] = attrs.field(factory=dict, init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _has_run: bool = attrs.field(default=False, init=False)
    _call_ids: itertools.count = attrs.field(factory=lambda: itertools.count(1), init=False)
    _inbound_open: int = attrs.field(default=0, init=False)
    _connections_refused: int = attrs.field(default=0, init=False)
    _protocol_violations: int = attrs.field(default=0, init=False)
    _dropped_unknown_peer: int = attrs.field(default=0, init=False)
    _handler_errors: int = attrs.field(default=0, init=False)
    _identifying: dict[Connection, _Identifying] = attrs.field(factory=dict, init=False)

    # --- lifecycle -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, accept, dial lazily; report started once the listener is bound.

        A Transport runs once; a restarted node builds a new one (new incarnation).
        """
        invariant(not self._has_run, "a Transport runs once; build a new one to restart")
        self._has_run = True
        tcp_listeners = await trio.open_tcp_listeners(self.listen_port, host=self.listen_host)
        listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(tcp_listeners)
        self.bound_port = tcp_listeners[0].socket.getsockname()[1]
        if self.server_ssl_context is not None:
            listeners = [
                trio.SSLListener(listener, self.server_ssl_context, https_compatible=False)
                for listener in tcp_listeners
            ]
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                serve = functools.partial(
                    trio.serve_listeners, self._serve_inbound, listeners, handler_nursery=nursery
                )
                await nursery.start(serve)
                event(
                    "transport_listening",
                    node=self.node_id,
                    host=self.listen_host,
                    port=self.bound_port,
                    tls=self.server_ssl_context is not None,
                )
                for peer in list(self._peers.values()):
                    self._kick(peer)
                task_status.started()
        finally:
            self._nursery = None
            for peer in self._peers.values():
                self._lose_peer_connection(peer, "transport stopped")

    # --- membership ------------------------------------------------------------------

    def set_peer_address(self, peer_id: int, host: str, port: int) -> None:
        """Add or move a peer. A live connection is kept; the next dial uses the new address."""
        invariant(peer_id != self.node_id, "a node is not its own peer")
        self.peer_addresses[peer_id] = (host, port)

    def remove_peer(self, peer_id: int) -> None:
        """Forget a peer: close its connection, drop its queue, fail its calls."""
        self.peer_addresses.pop(peer_id, None)
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        if peer.dialer_scope is not None:
            peer.dialer_scope.cancel()
        connection = peer.active
        self._lose_peer_connection(peer, "peer removed")
        if connection is not None:
            connection.close("peer removed")

    async def identify(self, host: str, port: int, timeout_s: float) -> int:
        """Dial an address whose node id is not known (a seed); return the id that answers.

        The hello says `ANY_PEER`, and the acceptor's answer names it. The connection then
        serves as that peer's (its address is recorded), so a `call` to the returned id goes
        over it. Raises PeerUnavailable, with the reason, when nothing there answers as a
        raftlog node within `timeout_s` (refused, not HTTP/2, no hello answer, ...), and
        SameNodeId when the node there has this node's id (or is this node).
        """
        invariant(timeout_s > 0, "timeout_s must be positive")
        nursery = self._nursery
        if nursery is None:
            raise PeerUnavailable(ANY_PEER, "this transport is not running")
        label = f"{host}:{port}"
        identifying = _Identifying(host, port)
        connection: Connection | None = None
        with trio.move_on_after(timeout_s):
            try:
                stream = await self._connect(host, port)
            except (OSError, trio.TooSlowError, trio.BrokenResourceError) as error:
                raise PeerUnavailable(ANY_PEER, f"connect to {label} failed: {error!r}") from None
            session = Session(
                client_side=True,
                node_id=self.node_id,
                incarnation=self.incarnation,
                limits=self.limits,
                authority=label,
            )
            session.start_client(ANY_PEER)
            connection = self._connection(stream, session, label, dialled_by_us=True)
            self._identifying[connection] = identifying
            nursery.start_soon(self._serve_identifying, connection)
            await identifying.done.wait()
        if connection is not None and self._identifying.pop(connection, None) is not None:
            connection.close(f"no hello answer within {timeout_s}s")
        if identifying.same_id:
            raise SameNodeId(ANY_PEER, f"the node at {label} has our node id {self.node_id}")
        if identifying.peer_id is None:
            reason = identifying.failure or f"no raftlog hello answer within {timeout_s}s"
            raise PeerUnavailable(ANY_PEER, f"{label} did not answer as a raftlog node: {reason}")
        return identifying.peer_id

    async def _serve_identifying(self, connection: Connection) -> None:
        try:
            await self._serve(connection)
        finally:
            identifying = self._identifying.pop(connection, None)
            if identifying is not None:
                identifying.finish(None, connection.close_reason or "closed")

    # --- sending ---------------------------------------------------------------------

    def send_nowait(
        self, peer_id: int, channel: Channel, payload: Payload, *, write_now: bool = False
    ) -> bool:
        """Queue a message; False (and a counted drop) if the peer's queue is full or the
        peer is unknown. Never blocks: the Raft loop calls this.

        `write_now`: if the connection's writer is idle, write what is queued to the
        socket from here, as far as it takes it without waiting (`Connection.write_now`),
        rather than a scheduling round later in the writer.
        """
        self._check_message(channel, payload)
        peer = self._peer_for_send(peer_id)
        if peer is None:
            self._dropped_unknown_peer += 1
            return False
        if not peer.queues[channel].put_nowait(payload):
            return False
        if write_now and peer.active is not None and peer.active.write_now():
            return True
        self._kick(peer)
        return True

    async def send(self, peer_id: int, channel: Channel, payload: Payload) -> None:
        """Queue a message, waiting for room (backpressure: snapshots use this).

        Raises PeerUnavailable if the peer is unknown. Returning means queued, not
        delivered: the message is dropped if the connection is lost first.
        """
        self._check_message(channel, payload)
        peer = self._peer_for_send(peer_id)
        if peer is None:
            raise PeerUnavailable(peer_id, "no address known and no connection")
        self._kick(peer)
        await peer.queues[channel].put(payload)
        self._kick(peer)

    def _check_message(self, channel: Channel, payload: Payload) -> None:
        if channel not in MESSAGE_CHANNELS:
            raise ValueError(f"{channel!r} is not a message channel; use call() for RPC")
        if len(payload) > self.limits.message_size_bytes_max:
            limit_bytes = self.limits.message_size_bytes_max
            raise ValueError(f"message of {len(payload)} bytes over the {limit_bytes} limit")

    async def call(self, peer_id: int, method: str, payload: bytes, timeout_s: float) -> bytes:
        """Ask a peer's `on_call` for an answer.

        Raises PeerUnavailable (unknown, unreachable — at once if the last dial failed
        recently — or the connection was lost mid-call), RpcTimeout, or RpcError.
        """
        invariant(timeout_s > 0, "timeout_s must be positive")
        if len(payload) + RPC_OVERHEAD_BYTES_MAX > self.limits.message_size_bytes_max:
            raise ValueError("rpc payload over the message size limit")
        if self._nursery is None:
            raise PeerUnavailable(peer_id, "this transport is not running")
        peer = self._peer_for_send(peer_id)
        if peer is None:
            raise PeerUnavailable(peer_id, "no address known and no connection")
        if peer.active is None and trio.current_time() < peer.unavailable_until_s:
            raise PeerUnavailable(peer_id, f"last attempt failed: {peer.last_failure}")
        call_id = next(self._call_ids)
        timeout_ms = max(1, int(timeout_s * 1000))
        request = encode_request(call_id, timeout_ms, method, payload)
        pending = _PendingCall(method)
        with trio.move_on_after(timeout_s) as scope:
            async with peer.outbound_call_slots:
                peer.calls[call_id] = pending
                try:
                    self._kick(peer)
                    await peer.queues[Channel.RPC].put(request)
                    self._kick(peer)
                    await pending.done.wait()
                finally:
                    peer.calls.pop(call_id, None)
        if scope.cancelled_caught and not pending.done.is_set():
            raise RpcTimeout(peer_id, method, timeout_s)
        if pending.error is not None:
            raise pending.error
        invariant(pending.result is not None, "a finished call has a result or an error")
        return pending.result  # type: ignore[return-value]

    def _peer_for_send(self, peer_id: int) -> _Peer | None:
        peer = self._peers.get(peer_id)
        if peer is None and peer_id in self.peer_addresses:
            peer = self._new_peer(peer_id)
        return peer

    def _new_peer(self, peer_id: int) -> _Peer:
        limits = self.limits
        peer = _Peer(
            peer_id=peer_id,
            queues={
                channel: ChannelQueue(limits.queue_messages_max, limits.queue_bytes_max)
                for channel in Channel
            },
            outbound_call_slots=trio.Semaphore(limits.concurrent_calls_per_peer_max),
        )
        self._peers[peer_id] = peer
        return peer

    def _kick(self, peer: _Peer) -> None:
        """Something is queued: wake the writer, or the dialer if not connected."""
        if peer.active is not None:
            peer.active.wake()
            return
        if self._nursery is None:
            return
        if peer.dialer_scope is None:
            peer.dialer_scope = trio.CancelScope()
            self._nursery.start_soon(self._dial_loop, peer)
        peer.dial_wanted.set()

    # --- dialing ---------------------------------------------------------------------

    async def _dial_loop(self, peer: _Peer) -> None:
        scope = peer.dialer_scope
        invariant(scope is not None, "dialer scope is set before the dialer starts")
        with scope:  # type: ignore[union-attr]
            while True:
                while not (peer.active is None and peer.has_work()):
                    peer.dial_wanted = trio.Event()
                    await peer.dial_wanted.wait()
                peer.dialing = True
                try:
                    failure, superseded = await self._dial_once(peer)
                finally:
                    peer.dialing = False
                if failure is None:
                    peer.failed_attempts = 0
                    continue
                delay_s = reconnect_delay_s(peer.failed_attempts, self.limits, self.jitter)
                if superseded:
                    # The peer is alive and keeps (or is making) the connection it dialled:
                    # keep our queue for it, and do not make callers fail fast.
                    peer.failed_attempts += 1
                    await trio.sleep(delay_s)
                    continue
                peer.failed_attempts += 1
                peer.connect_failures += 1
                peer.last_failure = failure
                peer.unavailable_until_s = trio.current_time() + delay_s
                event(
                    "transport_dial_failed",
                    logging.INFO if peer.failed_attempts == 1 else logging.DEBUG,
                    node=self.node_id,
                    peer=peer.peer_id,
                    reason=failure,
                    retry_in_s=round(delay_s, 3),
                )
                if peer.active is None:
                    self._lose_peer_connection(peer, failure)
                await trio.sleep(delay_s)

    async def _dial_once(self, peer: _Peer) -> tuple[str | None, bool]:
        """One attempt: connect, hello, serve until closed.

        Returns (None, False) if the connection worked for a while, else the failure and
        whether it was only superseded by the connection the peer dialled (409).
        """
        address = self.peer_addresses.get(peer.peer_id)
        if address is None:
            return "no address known", False
        host, port = address
        try:
            stream = await self._connect(host, port)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as error:
            return f"connect to {host}:{port} failed: {error!r}", False
        session = Session(
            client_side=True,
            node_id=self.node_id,
            incarnation=self.incarnation,
            limits=self.limits,
            authority=f"{host}:{port}",
        )
        session.start_client(peer.peer_id)
        connection = self._connection(stream, session, f"{host}:{port}", dialled_by_us=True)
        connection.peer_id = peer.peer_id
        started_s = trio.current_time()
        await self._serve(connection)
        lived_s = trio.current_time() - started_s
        if connection.established and lived_s >= self.limits.keepalive_interval_s:
            return None, False
        superseded = connection.superseded or peer.active is not None
        return connection.close_reason or "closed", superseded

    async def _connect(self, host: str, port: int) -> trio.abc.Stream:
        with trio.fail_after(self.limits.connect_timeout_s):
            tcp = await trio.open_tcp_stream(host, port)
            if self.client_ssl_context is None:
                return tcp
            tls = trio.SSLStream(
                tcp, self.client_ssl_context, server_hostname=host, https_compatible=False
            )
            try:
                await tls.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tls)
                raise
            return tls

    # --- connections -----------------------------------------------------------------

    def _connection(
        self, stream: trio.abc.Stream, session: Session, label: str, *, dialled_by_us: bool
    ) -> Connection:
        return Connection(
            stream=stream,
            session=session,
            limits=self.limits,
            dialled_by_us=dialled_by_us,
            remote_label=label,
            on_events=self._on_events,
        )

    async def _serve_inbound(self, stream: trio.abc.Stream) -> None:
        label = _remote_label(stream)
        if self._inbound_open >= self.limits.inbound_connections_max:
            self._connections_refused += 1
            event("transport_connection_refused", logging.WARNING, remote=label, reason="too many")
            await trio.aclose_forcefully(stream)
            return
        self._inbound_open += 1
        try:
            session = Session(
                client_side=False,
                node_id=self.node_id,
                incarnation=self.incarnation,
                limits=self.limits,
            )
            await self._serve(self._connection(stream, session, label, dialled_by_us=False))
        finally:
            self._inbound_open -= 1

    async def _serve(self, connection: Connection) -> None:
        try:
            await connection.run()
        finally:
            reason = connection.close_reason or "closed"
            if reason.startswith("protocol violation"):
                self._protocol_violations += 1
            peer = self._peers.get(connection.peer_id) if connection.peer_id is not None else None
            if peer is not None and peer.active is connection:
                self._lose_peer_connection(peer, reason)
            if peer is not None:
                self._forget_if_unknown(peer)

    def _forget_if_unknown(self, peer: _Peer) -> None:
        """Drop the state of a peer we only knew by its inbound connection, once idle.

        Anyone can claim a node id in a hello; keeping state per claimed id would let a
        stranger grow our memory, so it lives only as long as its connection.
        """
        idle = peer.active is None and not peer.calls and peer.inbound_calls_in_flight == 0
        if (
            idle
            and peer.peer_id not in self.peer_addresses
            and self._peers.get(peer.peer_id) is peer
        ):
            del self._peers[peer.peer_id]
            if peer.dialer_scope is not None:
                peer.dialer_scope.cancel()

    def _lose_peer_connection(self, peer: _Peer, reason: str) -> None:
        """The peer has no usable connection: drop its queue and fail its calls."""
        was_connected = peer.active is not None
        peer.active = None
        dropped = sum(queue.drop_all() for queue in peer.queues.values())
        for pending in list(peer.calls.values()):
            pending.finish(None, PeerUnavailable(peer.peer_id, reason))
        if was_connected:
            event(
                "transport_peer_disconnected",
                node=self.node_id,
                peer=peer.peer_id,
                reason=reason,
                messages_dropped=dropped,
            )

    def _prefers(self, candidate: Connection, current: Connection) -> bool:
        """Whether `candidate` should replace `current` for the same peer.

        Both ends evaluate this with the same facts, so both keep the same connection:
        a newer peer incarnation wins (the peer restarted, the old one is stale); else the
        connection dialled by the lower node id wins; else (the same node dialled again,
        having given up on the old one) the newer wins.
        """
        if candidate.peer_incarnation != current.peer_incarnation:
            return candidate.peer_incarnation > current.peer_incarnation
        if candidate.dialler_id != current.dialler_id:
            invariant(candidate.peer_id is not None, "candidate is identified")
            return candidate.dialler_id == min(self.node_id, candidate.peer_id)  # type: ignore[type-var]
        return True

    def _on_events(self, connection: Connection, events: list[SessionEvent]) -> None:
        for session_event in events:
            if connection.close_reason is not None:
                return
            if isinstance(session_event, MessagesReceived):
                self._on_messages(connection, session_event)
            elif isinstance(session_event, HelloReceived):
                self._on_hello(connection, session_event)
            elif isinstance(session_event, HelloAnswered):
                self._on_hello_answered(connection, session_event)
            elif isinstance(session_event, HelloRefused):
                identifying = self._identifying.get(connection)
                if identifying is not None and session_event.status == 421:
                    identifying.same_id = True
                connection.superseded = session_event.status == 409
                connection.close(f"hello refused with status {session_event.status}")
            elif isinstance(session_event, PeerSaidGoodbye):
                connection.close(f"peer said goodbye (error code {session_event.error_code})")
            elif isinstance(session_event, OutboundWindowOpened):
                connection.wake()

    def _on_hello(self, connection: Connection, hello: HelloReceived) -> None:
        if hello.peer_id == self.node_id or hello.peer_id <= 0:
            connection.session.refuse_hello(421)
            raise ProtocolViolation(f"hello from a node claiming id {hello.peer_id}")
        connection.peer_id = hello.peer_id
        connection.peer_incarnation = hello.peer_incarnation
        connection.dialler_id = hello.peer_id
        peer = self._peers.get(hello.peer_id) or self._new_peer(hello.peer_id)
        if peer.active is None and peer.dialing and self.node_id < hello.peer_id:
            # Both ends dial at once. Ours will win (lower id dials), so refuse this one
            # now rather than use it briefly and lose what we wrote on it.
            connection.session.refuse_hello(409)
            connection.close("duplicate: our own dial to this peer is under way")
            return
        if peer.active is not None and not self._prefers(connection, peer.active):
            connection.session.refuse_hello(409)
            connection.close("duplicate: keeping the other connection to this peer")
            return
        connection.session.accept_hello()
        self._activate(peer, connection)

    def _on_hello_answered(self, connection: Connection, hello: HelloAnswered) -> None:
        connection.peer_incarnation = hello.peer_incarnation
        connection.dialler_id = self.node_id
        identifying = self._identifying.pop(connection, None)
        if identifying is not None:
            if hello.peer_id == self.node_id:
                connection.close("dialled our own address")
                identifying.finish(None, "that address is this node's own")
                return
            # A seed: from now on it is a peer like any other, at the address we dialled.
            connection.peer_id = hello.peer_id
            self.peer_addresses[hello.peer_id] = (identifying.host, identifying.port)
            if hello.peer_id not in self._peers:
                self._new_peer(hello.peer_id)
            identifying.finish(hello.peer_id, "")
        peer = self._peers.get(hello.peer_id)
        if peer is None:  # removed while we dialled
            connection.close("peer removed")
            return
        if peer.active is not None and not self._prefers(connection, peer.active):
            connection.close("duplicate: keeping the other connection to this peer")
            return
        self._activate(peer, connection)

    def _activate(self, peer: _Peer, connection: Connection) -> None:
        previous = peer.active
        peer.active = connection
        connection.established = True
        connection.queues = peer.queues
        peer.connections_established += 1
        peer.failed_attempts = 0
        peer.unavailable_until_s = -math.inf
        if previous is not None:
            # Calls in flight may have gone out on the old connection; their answers
            # would come back on it, and we no longer read it.
            for pending in list(peer.calls.values()):
                pending.finish(None, PeerUnavailable(peer.peer_id, "connection replaced"))
            previous.close("replaced by a preferred connection to the same peer")
        event(
            "transport_peer_connected",
            node=self.node_id,
            peer=peer.peer_id,
            remote=connection.remote_label,
            dialled_by_us=connection.dialled_by_us,
            peer_incarnation=connection.peer_incarnation,
        )
        connection.wake()

    # --- receiving -------------------------------------------------------------------

    def _on_messages(self, connection: Connection, received: MessagesReceived) -> None:
        peer_id = connection.peer_id
        peer = self._peers.get(peer_id) if peer_id is not None else None
        if peer is None or peer.active is not connection:
            return  # a retired connection: what it still carries is dropped, keeping order
        channel = received.channel
        peer.messages_received[channel] += len(received.payloads)
        peer.bytes_received[channel] += sum(len(payload) for payload in received.payloads)
        if channel is Channel.RPC:
            for payload in received.payloads:
                self._on_rpc(peer, decode_envelope(payload))
            return
        for payload in received.payloads:
            try:
                self.handler.on_message(peer.peer_id, channel, payload)
            except Exception as error:
                self._handler_errors += 1
                event(
                    "transport_handler_failed",
                    logging.ERROR,
                    node=self.node_id,
                    peer=peer.peer_id,
                    channel=channel.name,
                    error=repr(error),
                )

    def _on_rpc(self, peer: _Peer, envelope: RpcRequest | RpcResponse | RpcFailure) -> None:
        if isinstance(envelope, RpcRequest):
            if peer.inbound_calls_in_flight >= self.limits.concurrent_calls_per_peer_max:
                self._reply(peer, encode_failure(envelope.call_id, RpcErrorCode.OVERLOADED, ""))
                return
            invariant(self._nursery is not None, "messages arrive only while running")
            peer.inbound_calls_in_flight += 1
            self._nursery.start_soon(self._serve_call, peer, envelope)  # type: ignore[union-attr]
            return
        pending = peer.calls.get(envelope.call_id)
        if pending is None:
            return  # the caller gave up already
        if isinstance(envelope, RpcResponse):
            pending.finish(envelope.body, None)
        else:
            error = RpcError(peer.peer_id, pending.method, envelope.code, envelope.message)
            pending.finish(None, error)

    async def _serve_call(self, peer: _Peer, request: RpcRequest) -> None:
        try:
            with trio.move_on_after(request.timeout_ms / 1000) as scope:
                try:
                    result = await self.handler.on_call(peer.peer_id, request.method, request.body)
                except NoSuchMethod as error:
                    reply = encode_failure(request.call_id, RpcErrorCode.NO_SUCH_METHOD, str(error))
                except Exception as error:
                    event(
                        "transport_call_handler_failed",
                        logging.WARNING,
                        node=self.node_id,
                        peer=peer.peer_id,
                        method=request.method,
                        error=repr(error),
                    )
                    reply = encode_failure(
                        request.call_id, RpcErrorCode.HANDLER_FAILED, repr(error)
                    )
                else:
                    reply = encode_response(request.call_id, result)
                    if len(reply) > self.limits.message_size_bytes_max:
                        reply = encode_failure(
                            request.call_id,
                            RpcErrorCode.RESPONSE_TOO_LARGE,
                            f"{len(result)} bytes",
                        )
            if scope.cancelled_caught:
                reply = encode_failure(request.call_id, RpcErrorCode.TIMEOUT, "deadline passed")
            self._reply(peer, reply)
        finally:
            peer.inbound_calls_in_flight -= 1
            self._forget_if_unknown(peer)

    def _reply(self, peer: _Peer, reply: bytes) -> None:
        # A full RPC queue drops the answer: the caller times out, as if it was lost.
        if self._peers.get(peer.peer_id) is peer and peer.queues[Channel.RPC].put_nowait(reply):
            self._kick(peer)

    # --- observing -------------------------------------------------------------------

    def statistics(self) -> TransportStatistics:
        return TransportStatistics(
            node_id=self.node_id,
            bound_port=self.bound_port,
            incarnation=self.incarnation,
            inbound_connections_open=self._inbound_open,
            connections_refused=self._connections_refused,
            protocol_violations=self._protocol_violations,
            messages_dropped_unknown_peer=self._dropped_unknown_peer,
            handler_errors=self._handler_errors,
            peers=types.MappingProxyType(
                {peer_id: self._peer_statistics(peer) for peer_id, peer in self._peers.items()}
            ),
        )

    def _peer_statistics(self, peer: _Peer) -> PeerStatistics:
        channels: dict[Channel, ChannelStatistics] = {}
        for channel, queue in peer.queues.items():
            queue_statistics = queue.statistics()
            channels[channel] = ChannelStatistics(
                messages_sent=queue_statistics.messages_taken,
                bytes_sent=queue_statistics.bytes_taken,
                messages_received=peer.messages_received[channel],
                bytes_received=peer.bytes_received[channel],
                messages_dropped_full=queue_statistics.messages_dropped_full,
                messages_dropped_disconnected=queue_statistics.messages_dropped_disconnected,
                queue_depth_messages=queue_statistics.depth_messages,
                queue_depth_bytes=queue_statistics.depth_bytes,
            )
        active = peer.active
        return PeerStatistics(
            peer_id=peer.peer_id,
            address=self.peer_addresses.get(peer.peer_id),
            connected=active is not None,
            dialled_by_us=None if active is None else active.dialled_by_us,
            connections_established=peer.connections_established,
            reconnects=max(0, peer.connections_established - 1),
            connect_failures=peer.connect_failures,
            calls_in_flight_outbound=len(peer.calls),
            calls_in_flight_inbound=peer.inbound_calls_in_flight,
            channels=types.MappingProxyType(channels),
        )


def _remote_label(stream: trio.abc.Stream) -> str:
    inner: object = getattr(stream, "transport_stream", stream)
    socket = getattr(inner, "socket", None)
    try:
        host, port = socket.getpeername()[:2]  # type: ignore[union-attr]
    except (AttributeError, OSError):
        return "unknown"
    return f"{host}:{port}"


__all__ = ["MessageHandler", "Transport"]
