"""Errors the transport raises to its callers, each saying which side is at fault."""

from __future__ import annotations

import enum


class TransportError(Exception):
    """Base class for transport errors."""


class PeerUnavailable(TransportError):
    """No connection to the peer could be used (unknown address, refused, lost, replaced).

    Raised at once when the last connection attempt failed recently, so callers
    (the controller, read forwarding) can try another node instead of waiting.
    """

    def __init__(self, peer_id: int, reason: str) -> None:
        super().__init__(f"peer {peer_id} unavailable: {reason}")
        self.peer_id = peer_id
        self.reason = reason


class SameNodeId(PeerUnavailable):
    """`Transport.identify`: the node at that address refused our hello because it has
    our node id (two nodes configured with one id)."""


class RpcTimeout(TransportError):
    """The peer did not answer a call within its timeout (it may still run the handler)."""

    def __init__(self, peer_id: int, method: str, timeout_s: float) -> None:
        super().__init__(f"call {method!r} to peer {peer_id} timed out after {timeout_s}s")
        self.peer_id = peer_id
        self.method = method
        self.timeout_s = timeout_s


class RpcErrorCode(enum.IntEnum):
    NO_SUCH_METHOD = 1
    """The peer's handler does not know the method."""
    HANDLER_FAILED = 2
    """The peer's handler raised; the message carries the exception's text."""
    OVERLOADED = 3
    """The peer already runs its maximum of concurrent calls from us."""
    TIMEOUT = 4
    """The peer cancelled the handler when the caller's deadline passed."""
    RESPONSE_TOO_LARGE = 5
    """The handler's answer exceeds the message size limit."""


class RpcError(TransportError):
    """The peer received the call and answered with an error."""

    def __init__(self, peer_id: int, method: str, code: RpcErrorCode, message: str) -> None:
        super().__init__(f"call {method!r} to peer {peer_id} failed: {code.name}: {message}")
        self.peer_id = peer_id
        self.method = method
        self.code = code
        self.message = message


class NoSuchMethod(Exception):
    """Raised by an `on_call` handler for a method it does not serve."""


class ProtocolViolation(Exception):
    """The remote end broke the wire protocol; only its connection is closed."""
