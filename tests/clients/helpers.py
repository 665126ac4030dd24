"""Shared pieces of the real-client tests: test records, a cuttable TCP proxy, raw frames.

Records are generated from a seed so a failure names the exact record; they carry binary
keys and values (with some nulls and empties) and headers with non-ASCII names, because
byte-for-byte comparison is only meaningful on bytes a client could mangle.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import struct
import threading
from collections.abc import Iterable, Sequence

import attrs

from raftlog.protocol.api_keys import API_SPECS
from raftlog.protocol.headers import RequestHeader, encode_request_header, response_header_version
from raftlog.protocol.messages._runtime import Message

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CLIENT_TIMEOUT_S = 30.0
Headers = tuple[tuple[str, bytes], ...]


@attrs.frozen
class Rec:
    """One record as a client produced it or read it back."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()


def make_records(count: int, seed: int, *, text: bool = False) -> list[Rec]:
    """`count` distinct records; `text` keeps them to printable ASCII without ':' or newlines
    (for kcat, whose input is lines and whose key delimiter is a character)."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        if text:
            key = f"k{seed}-{i}-" + "".join(rng.choices("abcdefxyz0123456789", k=rng.randrange(8)))
            value = f"v{i}-" + "".join(rng.choices("ABCDEFGHIJ xyz.,;-_", k=rng.randrange(200)))
            records.append(Rec(key.encode(), value.encode()))
            continue
        key: bytes | None = b"k%06d" % i + rng.randbytes(rng.randrange(16))
        value: bytes | None = rng.randbytes(rng.randrange(300))
        if i % 97 == 13:
            key = None
        if i % 89 == 7 and key is not None:  # clients refuse a record with neither
            value = None
        names = ("h", "trace-id", "schlüssel", "")
        headers = tuple(
            (rng.choice(names) + str(j), rng.randbytes(rng.randrange(12)))
            for j in range(rng.randrange(4))
        )
        records.append(Rec(key, value, headers))
    return records


def normalize_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    """Clients differ in how they return headers (None, list, tuple); compare as tuples."""
    return tuple((name, value if value is not None else b"") for name, value in headers or ())


def assert_same_records(
    produced: Sequence[Rec],
    consumed: Sequence[Rec],
    consumed_offsets: Sequence[int],
    acked_offsets: Sequence[int] | None = None,
) -> None:
    """Same records, same order, offsets strictly increasing (and where the producer was
    told they landed)."""
    assert len(consumed) == len(produced), f"read {len(consumed)} records of {len(produced)}"
    for i, (want, got) in enumerate(zip(produced, consumed, strict=True)):
        assert got == want, f"record {i} at offset {consumed_offsets[i]}: {got!r} != {want!r}"
    for before, after in itertools.pairwise(consumed_offsets):
        assert after > before, f"offsets not strictly increasing: {before} then {after}"
    if acked_offsets is not None:
        assert list(consumed_offsets) == list(acked_offsets), "read offsets differ from acks"


# -- a TCP proxy whose connections a test can cut -----------------------------------------


@attrs.define(eq=False)
class CuttableProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every open connection at once.

    `mute()` swallows the node's responses until the next cut, so the requests sent
    meanwhile reach the node and are appended but their answers are lost: the case where
    an idempotent producer must retry a batch the log already holds.

    Threads, not trio: the clients under test run in the test's own thread and the proxy
    must forward while they block.
    """

    target: tuple[str, int]
    port: int = 0
    cuts: int = 0
    connections_total: int = 0
    _server: socket.socket | None = None
    _open: set[socket.socket] = attrs.field(factory=set)
    _upstream: set[socket.socket] = attrs.field(factory=set)
    _muted: threading.Event = attrs.field(factory=threading.Event)
    responses_swallowed_bytes: int = 0
    requests_seen: set[tuple[int, int]] = attrs.field(factory=set)
    """(api key, api version) of every request frame a client sent through the proxy."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _stopping: threading.Event = attrs.field(factory=threading.Event)
    _threads: list[threading.Thread] = attrs.field(factory=list)

    def start(self) -> CuttableProxy:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __enter__(self) -> CuttableProxy:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.cut(count=False)
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def mute(self) -> None:
        """Forward requests but swallow every response until the next `cut`."""
        self._muted.set()

    def cut(self, *, count: bool = True) -> int:
        """Close both sides of every proxied connection; returns how many were cut."""
        with self._lock:
            victims = list(self._open)
            self._open.clear()
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._muted.clear()
        if count and victims:
            self.cuts += 1
        return len(victims) // 2

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
                self._upstream.add(upstream)
                self.connections_total += 1
            for source, sink in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                thread.start()

    def _note_requests(self, buffer: bytes) -> bytes:
        """Record the (api key, version) of each whole request frame; return the rest."""
        while len(buffer) >= 8:
            (size,) = struct.unpack_from(">i", buffer)
            if len(buffer) < 4 + size:
                break
            api_key, api_version = struct.unpack_from(">hh", buffer, 4)
            with self._lock:
                self.requests_seen.add((api_key, api_version))
            buffer = buffer[4 + size :]
        return buffer

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        pending = b""  # client side only: bytes of request frames not yet complete
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if source not in self._upstream:
                    pending = self._note_requests(pending + data)
                if source in self._upstream and self._muted.is_set():
                    self.responses_swallowed_bytes += len(data)
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
                self._upstream.discard(source)
            source.close()


# -- raw Kafka frames, for what no client library will send -----------------------------


def request_frame(
    api_key: int, api_version: int, body: Message, correlation_id: int = 1
) -> bytes:
    """A length-prefixed request frame, encoded with our codec."""
    header = RequestHeader(
        request_api_key=api_key,
        request_api_version=api_version,
        correlation_id=correlation_id,
        client_id="raw-test",
    )
    payload = encode_request_header(header) + body.encode(api_version)
    return struct.pack(">i", len(payload)) + payload


def read_frame(sock: socket.socket, timeout_s: float = 10.0) -> bytes | None:
    """One response frame's payload, or None if the peer closed first."""
    sock.settimeout(timeout_s)
    size_bytes = _read_exactly(sock, 4)
    if size_bytes is None:
        return None
    (size,) = struct.unpack(">i", size_bytes)
    assert 4 <= size <= 100 << 20, f"response frame of {size} bytes"
    payload = _read_exactly(sock, size)
    assert payload is not None, "connection closed inside a response frame"
    return payload


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            if data:
                raise AssertionError(f"connection closed after {len(data)} of {size} bytes")
            return None
        data += chunk
    return data


def call(
    address: tuple[str, int], api_key: int, api_version: int, body: Message
) -> Message:
    """Send one request on a fresh connection and decode its response."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request_frame(api_key, api_version, body, correlation_id=7))
        payload = read_frame(sock)
    assert payload is not None, f"api {api_key} v{api_version}: connection closed, no response"
    (correlation_id,) = struct.unpack_from(">i", payload)
    assert correlation_id == 7
    header_bytes = 4 if response_header_version(api_key, api_version) == 0 else 5
    response_class = API_SPECS[api_key].response_class
    return response_class.decode(payload[header_bytes:], api_version)
