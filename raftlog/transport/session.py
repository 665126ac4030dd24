"""One node-to-node HTTP/2 connection as a sans-IO state machine around h2.

Bytes in (`receive_data`) give session events; queued messages in (`fill`) give bytes
out (`data_to_send`). No socket, no clock: the trio driver in `connection.py` feeds it.

Wire protocol (prior-knowledge h2c, or h2 inside TLS):

- The dialler (HTTP/2 client) sends a hello request on stream 1, `POST /raftlog/v1/hello`,
  ended at once, with headers `raftlog-node-id` (its id), `raftlog-peer-id` (the id it
  expects to reach) and `raftlog-incarnation` (a number that grows each time a process
  starts). It then opens one stream per channel, `POST /raftlog/v1/channel/<name>`,
  never ended.
- The acceptor answers the hello with 200 and its own id and incarnation, or with 409
  (it keeps another connection to this peer) or 421 (wrong node); then it answers each
  channel stream with 200 and never ends the response. A hello whose `raftlog-peer-id`
  is `ANY_PEER` (0, never a node id) is meant for whoever listens there: a node joining
  by seed knows a seed's address but not its id, and learns it from the answer.
- From then on each channel stream is full duplex: the dialler writes its messages in
  the request body, the acceptor in the response body, both as length-prefixed messages
  (`framing.py`). So one TCP connection carries both directions.

Anything else (a bad preface, an unknown path, a frame or message over the limits, a
reset channel stream) raises ProtocolViolation; the driver closes that connection only.
"""

from __future__ import annotations

import collections

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from raftlog.transport import (
    _h2_speedups,  # noqa: F401  (applies itself)
    frame_buffer,
)
from raftlog.transport.channels import (
    HELLO_PATH,
    PATH_TO_CHANNEL,
    WRITE_PRIORITY,
    Channel,
    channel_path,
)
from raftlog.transport.data_frames import AVAILABLE as DIRECT_DATA_FRAMES
from raftlog.transport.data_frames import account_data_frame
from raftlog.transport.errors import ProtocolViolation
from raftlog.transport.framing import MessageDecoder, Payload, message_pieces
from raftlog.transport.limits import TransportLimits
from raftlog.transport.queues import ChannelQueue

HEADER_NODE_ID = b"raftlog-node-id"
HEADER_PEER_ID = b"raftlog-peer-id"
HEADER_INCARNATION = b"raftlog-incarnation"
HELLO_STREAM_ID = 1
ANY_PEER = 0
"""The peer id of a hello dialled to an address whose node id is not known (a seed)."""
_STREAMS_MAX = 2 + len(Channel)  # hello + channels, with one to spare
_HEADER_LIST_SIZE_BYTES_MAX = 4096
_H2_DEFAULT_WINDOW = 65_535


@attrs.frozen
class HelloReceived:
    """Acceptor side: the dialler said who it is; the driver must accept or reject."""

    peer_id: int
    peer_incarnation: int


@attrs.frozen
class HelloAnswered:
    """Dialler side: the acceptor accepted and said who it is."""

    peer_id: int
    peer_incarnation: int


@attrs.frozen
class HelloRefused:
    """Dialler side: the acceptor keeps another connection with us (409) or is not the
    node we meant (421)."""

    status: int


@attrs.frozen
class MessagesReceived:
    channel: Channel
    payloads: list[bytes]
    """In the order the peer queued them."""


@attrs.frozen
class OutboundWindowOpened:
    """The peer granted flow-control credit: the writer may have more to send."""


@attrs.frozen
class PeerSaidGoodbye:
    """GOAWAY: the peer is closing this connection."""

    error_code: int


SessionEvent = (
    HelloReceived
    | HelloAnswered
    | HelloRefused
    | MessagesReceived
    | OutboundWindowOpened
    | PeerSaidGoodbye
)


def _header_int(headers: dict[bytes, bytes], name: bytes) -> int:
    try:
        return int(headers[name])
    except (KeyError, ValueError) as error:
        raise ProtocolViolation(f"hello without a valid {name.decode()} header") from error


@attrs.define(eq=False)
class _Outbound:
    """Messages of one channel taken from its queue and not yet in DATA frames, as length
    prefixes and payload views in wire order."""

    stream_id: int
    pieces: collections.deque[memoryview] = attrs.field(factory=collections.deque)
    size_bytes: int = 0

    def add(self, payloads: list[Payload]) -> None:
        for piece in message_pieces(payloads):
            self.pieces.append(piece)
            self.size_bytes += len(piece)

    def take(self, size_bytes: int) -> list[memoryview]:
        """The next `size_bytes` of the stream (at most `size_bytes` held), as views."""
        taken: list[memoryview] = []
        self.size_bytes -= size_bytes
        while size_bytes:
            piece = self.pieces[0]
            if len(piece) <= size_bytes:
                self.pieces.popleft()
                taken.append(piece)
                size_bytes -= len(piece)
            else:
                taken.append(piece[:size_bytes])
                self.pieces[0] = piece[size_bytes:]
                size_bytes = 0
        return taken


class Session:
    """The HTTP/2 state of one connection between this node and a peer."""

    def __init__(
        self,
        *,
        client_side: bool,
        node_id: int,
        incarnation: int,
        limits: TransportLimits,
        authority: str = "raftlog",
    ) -> None:
        self.client_side = client_side
        self._node_id = node_id
        self._incarnation = incarnation
        self._limits = limits
        self._authority = authority.encode("ascii", errors="replace")
        config = h2.config.H2Configuration(client_side=client_side, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config)
        if frame_buffer.USABLE:
            self._h2.incoming_buffer = frame_buffer.ChunkedFrameBuffer(server=not client_side)
        settings: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: _STREAMS_MAX,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window_bytes,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.frame_size_bytes_max,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: _HEADER_LIST_SIZE_BYTES_MAX,
        }
        if client_side:
            settings[h2.settings.SettingCodes.ENABLE_PUSH] = 0
        # Set before initiate_connection so our first SETTINGS frame carries them and our
        # own streams get the large window from the start (h2's documented idiom).
        self._h2.local_settings = h2.settings.Settings(client=client_side, initial_values=settings)
        self._h2.max_inbound_frame_size = limits.frame_size_bytes_max
        self._h2.initiate_connection()
        extra_window = limits.connection_window_bytes - _H2_DEFAULT_WINDOW
        if extra_window > 0:
            self._h2.increment_flow_control_window(extra_window)
        self._outbound: dict[Channel, _Outbound] = {}
        self._direct: list[bytes | memoryview] = []
        """Bytes out in order when DATA frames are written beside h2: h2's, headers, views."""
        self._inbound: dict[int, tuple[Channel, MessageDecoder]] = {}
        self.hello_done = False
        """Set once both ends know who the other is (hello answered / accepted)."""
        self._hello_received = False
        self._channels_awaiting_hello: list[tuple[Channel, int]] = []
        self._ping_counter = 0

    # --- dialler -------------------------------------------------------------------

    def start_client(self, expected_peer_id: int) -> None:
        """Open the hello and the channel streams (pipelined: no round trip wasted)."""
        self._expected_peer_id = expected_peer_id
        stream_id = self._h2.get_next_available_stream_id()
        if stream_id != HELLO_STREAM_ID:
            raise ProtocolViolation("hello must be the first stream")
        self._h2.send_headers(
            stream_id,
            [
                *self._request_headers(HELLO_PATH),
                (HEADER_NODE_ID, str(self._node_id).encode()),
                (HEADER_PEER_ID, str(expected_peer_id).encode()),
                (HEADER_INCARNATION, str(self._incarnation).encode()),
            ],
            end_stream=True,
        )
        for channel in Channel:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, self._request_headers(channel_path(channel)))
            self._outbound[channel] = _Outbound(stream_id)
            self._inbound[stream_id] = (channel, self._decoder())

    def _request_headers(self, path: bytes) -> list[tuple[bytes, bytes]]:
        return [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", self._authority),
            (b":path", path),
        ]

    # --- acceptor ------------------------------------------------------------------

    def accept_hello(self) -> None:
        """Answer the hello, then the channel streams the dialler opened behind it."""
        self._check_answerable()
        self._h2.send_headers(
            HELLO_STREAM_ID,
            [
                (b":status", b"200"),
                (HEADER_NODE_ID, str(self._node_id).encode()),
                (HEADER_INCARNATION, str(self._incarnation).encode()),
            ],
            end_stream=True,
        )
        self.hello_done = True
        for channel, stream_id in self._channels_awaiting_hello:
            self._open_channel(channel, stream_id)
        self._channels_awaiting_hello.clear()

    def refuse_hello(self, status: int) -> None:
        """Answer the hello with an error status and say goodbye; caller then closes."""
        self._check_answerable()
        self._h2.send_headers(
            HELLO_STREAM_ID, [(b":status", str(status).encode())], end_stream=True
        )
        self._h2.close_connection(h2.errors.ErrorCodes.REFUSED_STREAM)

    def _check_answerable(self) -> None:
        """A dialler may send its hello and its goodbye in one write (it was stopping):
        h2 then holds a closed connection, on which any answer is a protocol error."""
        if self._h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
            raise ProtocolViolation("the peer closed the connection before its hello was answered")

    # --- both ----------------------------------------------------------------------

    def _decoder(self) -> MessageDecoder:
        return MessageDecoder(self._limits.message_size_bytes_max)

    def receive_data(self, data: bytes) -> list[SessionEvent]:
        """Feed bytes from the socket. Raises ProtocolViolation on anything unexpected."""
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            raise ProtocolViolation(f"http/2: {error!r}") from error
        events: list[SessionEvent] = []
        for h2_event in h2_events:
            event = self._handle(h2_event)
            if event is not None:
                events.append(event)
        return events

    def _handle(self, event: h2.events.Event) -> SessionEvent | None:
        if isinstance(event, h2.events.DataReceived):
            return self._on_data(event)
        if isinstance(event, h2.events.RequestReceived):
            return self._on_request(event)
        if isinstance(event, h2.events.ResponseReceived):
            return self._on_response(event)
        if isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            return OutboundWindowOpened()
        if isinstance(event, h2.events.ConnectionTerminated):
            return PeerSaidGoodbye(int(event.error_code or 0))
        if isinstance(event, h2.events.StreamReset):
            raise ProtocolViolation(f"peer reset stream {event.stream_id}")
        if isinstance(event, h2.events.TrailersReceived | h2.events.PushedStreamReceived):
            raise ProtocolViolation(f"unexpected {type(event).__name__}")
        if isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self._inbound:
                raise ProtocolViolation(f"peer ended channel stream {event.stream_id}")
            return None
        # Settings acks, pings and their acks, priority updates: h2 handles them.
        return None

    def _on_data(self, event: h2.events.DataReceived) -> SessionEvent | None:
        stream_id = event.stream_id
        if stream_id is None or stream_id not in self._inbound or not self.hello_done:
            raise ProtocolViolation(f"data on stream {stream_id} that carries no channel")
        channel, decoder = self._inbound[stream_id]
        payloads = decoder.receive_data(event.data or b"")
        # The driver delivers these synchronously before reading again, so the bytes
        # are processed now: give the credit back so the peer's window reopens.
        self._h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        return MessagesReceived(channel, payloads) if payloads else None

    def _on_request(self, event: h2.events.RequestReceived) -> SessionEvent | None:
        headers = dict(event.headers or [])
        path = headers.get(b":path", b"")
        stream_id = event.stream_id
        if stream_id is None or headers.get(b":method") != b"POST":
            raise ProtocolViolation(f"bad request on stream {stream_id}")
        if path == HELLO_PATH:
            if stream_id != HELLO_STREAM_ID:
                raise ProtocolViolation("hello on a stream other than 1")
            if _header_int(headers, HEADER_PEER_ID) not in (self._node_id, ANY_PEER):
                self.refuse_hello(421)
                raise ProtocolViolation(
                    f"hello meant for node {headers.get(HEADER_PEER_ID)!r}, we are {self._node_id}"
                )
            self._hello_received = True
            return HelloReceived(
                peer_id=_header_int(headers, HEADER_NODE_ID),
                peer_incarnation=_header_int(headers, HEADER_INCARNATION),
            )
        channel = PATH_TO_CHANNEL.get(path)
        if channel is None:
            raise ProtocolViolation(f"unknown path {path[:100]!r}")
        opened = {c for c, _ in self._channels_awaiting_hello} | set(self._outbound)
        if not self._hello_received or channel in opened:
            raise ProtocolViolation(f"channel {channel.name} opened before hello or twice")
        if self.hello_done:
            self._open_channel(channel, stream_id)
        else:
            # The hello is in the same read; the transport has not decided on it yet.
            self._channels_awaiting_hello.append((channel, stream_id))
        return None

    def _open_channel(self, channel: Channel, stream_id: int) -> None:
        self._h2.send_headers(stream_id, [(b":status", b"200")])
        self._outbound[channel] = _Outbound(stream_id)
        self._inbound[stream_id] = (channel, self._decoder())

    def _on_response(self, event: h2.events.ResponseReceived) -> SessionEvent | None:
        headers = dict(event.headers or [])
        status = headers.get(b":status", b"")
        if event.stream_id == HELLO_STREAM_ID:
            if status != b"200":
                try:
                    return HelloRefused(int(status))
                except ValueError as error:
                    raise ProtocolViolation(f"hello answered with {status!r}") from error
            peer_id = _header_int(headers, HEADER_NODE_ID)
            if peer_id <= 0:
                raise ProtocolViolation(f"the acceptor answered with node id {peer_id}")
            if self._expected_peer_id not in (peer_id, ANY_PEER):
                raise ProtocolViolation(
                    f"dialled node {self._expected_peer_id} but node {peer_id} answered"
                )
            self.hello_done = True
            return HelloAnswered(peer_id, _header_int(headers, HEADER_INCARNATION))
        if event.stream_id not in self._inbound or status != b"200":
            raise ProtocolViolation(f"channel stream {event.stream_id} answered {status!r}")
        return None

    def fill(self, queues: dict[Channel, ChannelQueue]) -> int:
        """Move queued messages into HTTP/2 DATA frames, highest priority first.

        Each channel adds at most `write_round_bytes_max` per call, so one round (one
        socket write) never holds a heartbeat behind megabytes of snapshot. Everything a
        channel has queued is framed into one buffer and cut into frames as large as the
        peer allows: many small messages cost a few frames, not one each.
        Returns the bytes handed to h2.
        """
        if not self.hello_done:
            return 0
        round_bytes_max = self._limits.write_round_bytes_max
        total_bytes = 0
        for channel in WRITE_PRIORITY:
            outbound = self._outbound.get(channel)
            if outbound is None:
                continue
            budget_bytes = round_bytes_max
            while budget_bytes > 0:
                if not outbound.size_bytes:
                    payloads = queues[channel].take(budget_bytes)
                    if not payloads:
                        break
                    outbound.add(payloads)
                window_bytes = self._h2.local_flow_control_window(outbound.stream_id)
                if window_bytes <= 0:
                    break
                size_bytes = min(
                    outbound.size_bytes,
                    window_bytes,
                    self._h2.max_outbound_frame_size,
                    budget_bytes,
                )
                self._send_data(outbound.stream_id, size_bytes, outbound.take(size_bytes))
                budget_bytes -= size_bytes
                total_bytes += size_bytes
        return total_bytes

    def _send_data(self, stream_id: int, size_bytes: int, pieces: list[memoryview]) -> None:
        """One DATA frame of `pieces`; written beside h2 when that is known to match h2
        (`data_frames`), so the payload is not copied on its way to the socket (h2 copied
        it five times)."""
        if not DIRECT_DATA_FRAMES:
            self._h2.send_data(stream_id, b"".join(pieces))
            return
        self._take_h2_output()
        self._direct.append(account_data_frame(self._h2, stream_id, size_bytes))
        self._direct.extend(pieces)

    @property
    def open_channels(self) -> frozenset[Channel]:
        """Channels whose stream both ends have opened (we can write on them)."""
        return frozenset(self._outbound)

    def send_ping(self) -> None:
        self._ping_counter += 1
        self._h2.ping(self._ping_counter.to_bytes(8, "big"))

    def say_goodbye(self) -> None:
        self._h2.close_connection(h2.errors.ErrorCodes.NO_ERROR)

    def data_to_send(self) -> bytes:
        return b"".join(self.buffers_to_send())

    def has_output(self) -> bool:
        """Whether anything waits to be written (frames h2 produced on its own: SETTINGS
        and PING acknowledgements, window updates); nothing is written here."""
        self._take_h2_output()
        return bool(self._direct)

    def _take_h2_output(self) -> None:
        """Move what h2 has buffered to the end of the outgoing pieces, keeping the order
        in which frames were made."""
        queued = self._h2.data_to_send()
        if queued:
            self._direct.append(queued)

    def buffers_to_send(self) -> list[bytes | memoryview]:
        """What to write next, in order, as the pieces it was built from: the payloads of
        DATA frames written beside h2 are views of the queued messages, not copies
        (`vectored.send_buffers` writes them as they are)."""
        self._take_h2_output()
        buffers = self._direct
        self._direct = []
        return buffers
