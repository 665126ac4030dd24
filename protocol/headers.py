"""Request and response headers, with Kafka's rules for which header version applies.

The header classes themselves are generated from `RequestHeader.json` and
`ResponseHeader.json`; ClientId keeps its int16 length prefix even in the flexible
header v2 because its schema says `"flexibleVersions": "none"`.
"""

from __future__ import annotations

import struct

from raftlog.protocol.api_keys import (
    API_SPECS,
    request_header_version,
    response_header_version,
)
from raftlog.protocol.errors import DecodeError
from raftlog.protocol.messages.generated.request_header import RequestHeader
from raftlog.protocol.messages.generated.response_header import ResponseHeader
from raftlog.protocol.primitives import truncated

__all__ = [
    "RequestHeader",
    "ResponseHeader",
    "decode_request_header",
    "encode_request_header",
    "encode_response_header",
    "peek_request_ids",
    "request_header_version",
    "response_header_version",
]

_IDS = struct.Struct(">hhi")
_INT32 = struct.Struct(">i")


def peek_request_ids(buf: memoryview) -> tuple[int, int, int]:
    """(api key, api version, correlation id): the fixed start of every request header."""
    if len(buf) < _IDS.size:
        raise truncated("request header", 0, _IDS.size, buf)
    api_key, api_version, correlation_id = _IDS.unpack_from(buf, 0)
    return api_key, api_version, correlation_id


def decode_request_header(buf: memoryview) -> tuple[RequestHeader, int, int]:
    """Decode a request header of a known API; returns (header, header version, body offset)."""
    api_key, api_version, _ = peek_request_ids(buf)
    if api_key not in API_SPECS:
        raise DecodeError(f"unknown api key {api_key}")
    header_version = request_header_version(api_key, api_version)
    header, pos = RequestHeader.decode_from(buf, 0, header_version)
    return header, header_version, pos


def encode_request_header(header: RequestHeader) -> bytes:
    """Encode a request header in the version its API version calls for (client side)."""
    version = request_header_version(header.request_api_key, header.request_api_version)
    return header.encode(version)


def encode_response_header(api_key: int, api_version: int, correlation_id: int) -> bytes:
    """The response header bytes for a response to (api_key, api_version)."""
    if response_header_version(api_key, api_version) == 0:
        return _INT32.pack(correlation_id)
    return _INT32.pack(correlation_id) + b"\x00"  # v1: an empty tagged-field section
