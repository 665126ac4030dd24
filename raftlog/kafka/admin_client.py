"""A small synchronous Kafka client for raftlog's own CLI, built on our codec.

The CLI must work with only raftlog's runtime dependencies installed, so it speaks Kafka
itself: one request at a time, with timeouts, and a frame-size bound on what it reads.
"""

from __future__ import annotations

import socket
import struct

from raftlog.protocol.api_keys import API_SPECS, response_header_version
from raftlog.protocol.headers import encode_request_header
from raftlog.protocol.messages._runtime import Message
from raftlog.protocol.messages.generated.request_header import RequestHeader

RESPONSE_BYTES_MAX = 64 << 20
TIMEOUT_S = 10.0
CLIENT_ID = "raftlog-cli"


class NodeUnreachable(ConnectionError):
    """Nothing answers at the address; the message says what to check."""


class KafkaAdminConnection:
    """One connection to one node; `request` sends a message and decodes its response."""

    def __init__(self, address: str, timeout_s: float = TIMEOUT_S) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        try:
            self._socket = socket.create_connection((host, int(port)), timeout=timeout_s)
        except OSError as error:
            raise NodeUnreachable(
                f"no node at {address} ({error.strerror or error}) — is `raftlog serve` running?"
            ) from error
        self._correlation_id = 0

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> KafkaAdminConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, body: Message, version: int) -> Message:
        api_key = type(body).API_KEY
        assert api_key is not None
        self._correlation_id += 1
        header = RequestHeader(
            request_api_key=api_key,
            request_api_version=version,
            correlation_id=self._correlation_id,
            client_id=CLIENT_ID,
        )
        payload = encode_request_header(header) + body.encode(version)
        self._socket.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", self._read(4))[0]
        if not 4 <= size <= RESPONSE_BYTES_MAX:
            raise ConnectionError(f"{self.address} answered a frame of {size} bytes")
        frame = memoryview(self._read(size))
        correlation_id = struct.unpack_from(">i", frame)[0]
        if correlation_id != self._correlation_id:
            raise ConnectionError(f"{self.address} answered correlation id {correlation_id}")
        position = 4
        if response_header_version(api_key, version) == 1:
            position += 1  # an empty tagged-field section
        response_class = API_SPECS[api_key].response_class
        return response_class.decode(frame[position:], version)

    def _read(self, count: int) -> bytes:
        chunks = []
        remaining = count
        while remaining:
            chunk = self._socket.recv(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError(f"{self.address} closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def connect_any(bootstrap: str, timeout_s: float = TIMEOUT_S) -> KafkaAdminConnection:
    """A connection to the first node of a comma-separated bootstrap list that answers."""
    failures = []
    for address in (part.strip() for part in bootstrap.split(",")):
        if not address:
            continue
        try:
            return KafkaAdminConnection(address, timeout_s)
        except NodeUnreachable as error:
            failures.append(str(error))
    raise NodeUnreachable("; ".join(failures) or f"no address in {bootstrap!r}")
