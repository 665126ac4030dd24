"""The trio driver of one Session over one byte stream: a reader, a writer, a watchdog.

Only the writer task writes (trio forbids concurrent sends on a stream); the reader and
the transport wake it. Each writer round drains the session in one gather write
(`vectored.send_buffers`), after it packed everything queued into frames (`Session.fill`).
The one exception is `write_now`: while the writer sleeps with nothing left over, the
task that queued a message may write it itself, as far as the socket takes it without
waiting; the writer sends whatever is left.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import attrs
import h2.exceptions
import trio

from raftlog.logs import event
from raftlog.transport.channels import Channel
from raftlog.transport.errors import ProtocolViolation
from raftlog.transport.limits import TransportLimits
from raftlog.transport.queues import ChannelQueue
from raftlog.transport.session import MessagesReceived, Session, SessionEvent
from raftlog.transport.vectored import send_buffers, write_without_waiting

_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_GOODBYE_TIMEOUT_S = 0.2


@attrs.define(eq=False)
class Connection:
    stream: trio.abc.Stream
    session: Session
    limits: TransportLimits
    dialled_by_us: bool
    remote_label: str
    """host:port of the other end, for log lines."""
    on_events: Callable[[Connection, list[SessionEvent]], None]
    """The transport's reaction to what the peer sent; may raise ProtocolViolation."""
    peer_id: int | None = None
    peer_incarnation: int = 0
    dialler_id: int | None = None
    queues: dict[Channel, ChannelQueue] | None = None
    """Set while this is the peer's active connection: the writer drains these."""
    established: bool = False
    superseded: bool = False
    """The peer refused our hello because it keeps another connection with us (409)."""
    close_reason: str | None = None
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _unsent: bytes = b""
    """Bytes taken from the session after the connection was closed, sent with the goodbye."""
    _wake_event: trio.Event = attrs.field(factory=trio.Event)
    _last_received_s: float = attrs.field(factory=trio.current_time)
    _last_ping_s: float = -math.inf
    _write_started_s: float | None = None
    _writer_idle: bool = False
    """The writer waits to be woken and holds nothing it has not written."""
    _left_over: list[memoryview] = attrs.field(factory=list)
    """What `write_now` could not write without waiting; the writer sends it first."""

    def wake(self) -> None:
        """Tell the writer there may be something to send."""
        self._wake_event.set()

    def write_now(self) -> bool:
        """Write what is queued from the calling task, without waiting, if the writer is
        idle; True if nothing is left for the writer (else wake it).

        A message handed to the writer waits for a scheduling round of its own before it
        reaches the socket, on the path of every replicated record: an append to a
        follower, a follower's answer. Nothing interleaves with the writer: this runs
        only while it sleeps, and whatever the socket does not take now is left for it,
        in order. Plain TCP streams only (TLS goes through its stream's own writes).
        """
        if not self._writer_idle or self._left_over or self.close_reason is not None:
            return False
        if not isinstance(self.stream, trio.SocketStream):
            return False
        try:
            if self.queues is not None:
                self.session.fill(self.queues)
            buffers = self.session.buffers_to_send()
        except h2.exceptions.ProtocolError:
            return False  # the writer meets it again and closes the connection
        _written, left_over, error = write_without_waiting(self.stream, buffers)
        if error is not None and not isinstance(error, BlockingIOError):
            self.close(f"write failed: {error!r}")
            return True
        self._left_over = left_over
        return not left_over

    def close(self, reason: str, *, level: int = logging.INFO) -> None:
        """Stop this connection (idempotent); `run` then says goodbye and returns."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.queues = None
        event(
            "transport_connection_closed",
            level,
            remote=self.remote_label,
            peer=self.peer_id,
            dialled_by_us=self.dialled_by_us,
            reason=reason,
        )
        self._scope.cancel()

    async def run(self) -> None:
        """Serve the connection until it is closed; always closes the stream."""
        self.wake()  # the session starts with a preface (and a hello) to send
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_loop)
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._watchdog)
            await self._say_goodbye()
        finally:
            await trio.aclose_forcefully(self.stream)

    async def _say_goodbye(self) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.session.say_goodbye()
        left_over, self._left_over = self._left_over, []
        data = b"".join([self._unsent, *left_over]) + self.session.data_to_send()
        if not data:
            return
        with trio.move_on_after(_GOODBYE_TIMEOUT_S):
            try:
                await self.stream.send_all(data)
            except (*_IO_ERRORS, trio.BusyResourceError):
                pass

    async def _read_loop(self) -> None:
        while True:
            try:
                data = await self.stream.receive_some(self.limits.read_size_bytes)
            except _IO_ERRORS as error:
                self.close(f"read failed: {error!r}")
                return
            if not data:
                self.close("peer closed the connection")
                return
            self._last_received_s = trio.current_time()
            try:
                events = self.session.receive_data(data)
                self.on_events(self, events)
            except (ProtocolViolation, h2.exceptions.ProtocolError) as error:
                # h2's own error here means we tried to answer on a connection the peer
                # had already closed: that connection ends, never the node.
                self.close(f"protocol violation: {error}", level=logging.WARNING)
                return
            # Received messages wake the writer themselves when answers are queued
            # (`Transport._kick`): woken for them too, it ran a round that found nothing,
            # several times per replicated record.
            if self.session.has_output() or not all(
                isinstance(received, MessagesReceived) for received in events
            ):
                self.wake()

    async def _write_loop(self) -> None:
        while True:
            self._writer_idle = True
            await self._wake_event.wait()
            self._wake_event = trio.Event()
            self._writer_idle = False
            while True:
                buffers: list[bytes | memoryview]
                buffers, self._left_over = list(self._left_over), []
                try:
                    if not buffers:
                        if self.queues is not None:
                            self.session.fill(self.queues)
                        buffers = self.session.buffers_to_send()
                except h2.exceptions.ProtocolError as error:
                    self.close(f"cannot write: {error!r}", level=logging.WARNING)
                    return
                if not buffers:
                    break
                if self._scope.cancel_called:
                    # Closed while this writer was scheduled (the reader refused a hello,
                    # say): these bytes, often that refusal, go out with the goodbye.
                    self._unsent += b"".join(buffers)
                    return
                self._write_started_s = trio.current_time()
                try:
                    await send_buffers(self.stream, buffers)
                except _IO_ERRORS as error:
                    self.close(f"write failed: {error!r}")
                    return
                self._write_started_s = None

    async def _watchdog(self) -> None:
        """Close a connection whose hello, reads or writes stall; ping an idle one."""
        limits = self.limits
        hello_deadline_s = trio.current_time() + limits.connect_timeout_s
        period_s = min(limits.keepalive_interval_s, limits.connect_timeout_s) / 4
        while True:
            await trio.sleep(period_s)
            now_s = trio.current_time()
            if not self.established and now_s > hello_deadline_s:
                self.close(f"no hello within {limits.connect_timeout_s}s", level=logging.WARNING)
                return
            write_started_s = self._write_started_s
            if write_started_s is not None and now_s - write_started_s > limits.keepalive_timeout_s:
                self.close(f"writes stalled for over {limits.keepalive_timeout_s}s")
                return
            silent_s = now_s - self._last_received_s
            if silent_s > limits.keepalive_timeout_s:
                self.close(f"peer silent for {silent_s:.1f}s")
                return
            interval_s = limits.keepalive_interval_s
            ping_due = silent_s >= interval_s and now_s - self._last_ping_s >= interval_s
            if self.established and ping_due:
                self._last_ping_s = now_s
                self.session.send_ping()
                self.wake()
