"""Headers and the sans-IO connection: framing, limits, pipelining, version handling."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftlog.protocol.api_keys import API_SPECS, ApiKey, request_header_version
from raftlog.protocol.connection import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ErrorAction,
    LocalProtocolError,
    ProtocolError,
    RequestReceived,
    ServerConnection,
)
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.headers import (
    RequestHeader,
    encode_request_header,
    encode_response_header,
    response_header_version,
)
from raftlog.protocol.messages.generated.api_versions_request import ApiVersionsRequest
from raftlog.protocol.messages.generated.api_versions_response import ApiVersionsResponse
from raftlog.protocol.messages.generated.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from raftlog.protocol.messages.generated.metadata_request import MetadataRequest
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.messages.generated.produce_response import ProduceResponse

SERVED = {0: (0, 10), 1: (4, 12), 3: (0, 12), 18: (0, 3)}


def frame(api_key: int, version: int, correlation_id: int, body: object, client_id="c") -> bytes:  # type: ignore[no-untyped-def]
    header = encode_request_header(
        RequestHeader(
            request_api_key=api_key,
            request_api_version=version,
            correlation_id=correlation_id,
            client_id=client_id,
        )
    )
    payload = header + body.encode(version)  # type: ignore[attr-defined]
    return struct.pack(">i", len(payload)) + payload


def test_header_version_rules() -> None:
    assert request_header_version(ApiKey.PRODUCE, 8) == 1
    assert request_header_version(ApiKey.PRODUCE, 9) == 2
    assert request_header_version(ApiKey.CONTROLLED_SHUTDOWN, 0) == 0
    assert request_header_version(ApiKey.CONTROLLED_SHUTDOWN, 1) == 1
    assert request_header_version(ApiKey.API_VERSIONS, 3) == 2
    assert request_header_version(ApiKey.API_VERSIONS, 99) == 2  # open-ended flexible
    assert response_header_version(ApiKey.METADATA, 8) == 0
    assert response_header_version(ApiKey.METADATA, 9) == 1
    for version in range(5):  # the exception: ApiVersions responses always use v0
        assert response_header_version(ApiKey.API_VERSIONS, version) == 0
    assert encode_response_header(ApiKey.FETCH, 12, 7) == b"\x00\x00\x00\x07\x00"
    assert encode_response_header(ApiKey.API_VERSIONS, 3, 7) == b"\x00\x00\x00\x07"


def test_client_id_keeps_int16_length_in_header_v2() -> None:
    header = RequestHeader(
        request_api_key=18, request_api_version=3, correlation_id=1, client_id="abc"
    )
    encoded = header.encode(2)
    assert encoded == bytes.fromhex("0012 0003 00000001 0003 616263 00".replace(" ", ""))
    assert RequestHeader.decode(encoded, 2) == header
    null_client = RequestHeader(request_api_key=18, request_api_version=0, client_id=None)
    assert null_client.encode(1).endswith(b"\xff\xff")


def test_pipelined_requests_come_out_in_order_however_split() -> None:
    requests = [
        frame(18, 3, 1, ApiVersionsRequest(client_software_name="x", client_software_version="1")),
        frame(3, 12, 2, MetadataRequest(topics=None)),
        frame(18, 0, 3, ApiVersionsRequest()),
        frame(3, 1, 4, MetadataRequest(topics=[])),
    ]
    stream = b"".join(requests)
    cases = [(size, reused) for size in (1, 3, 7, len(stream)) for reused in (False, True)]
    for chunk_size, reused in cases:
        connection = ServerConnection(SERVED)
        seen = []
        scratch = bytearray(chunk_size)
        for start in range(0, len(stream), chunk_size):
            chunk = stream[start : start + chunk_size]
            if reused:  # a caller's buffer, overwritten after each call: nothing may alias it
                scratch[: len(chunk)] = chunk
                connection.receive_data(memoryview(scratch)[: len(chunk)])
                scratch[:] = bytes(len(scratch))
            else:
                connection.receive_data(chunk)
            while (event := connection.next_request()) is not NEED_DATA:
                assert isinstance(event, RequestReceived)
                seen.append(event)
        assert [event.correlation_id for event in seen] == [1, 2, 3, 4]
        assert [event.api_key for event in seen] == [18, 3, 18, 3]
        assert seen[1].body == MetadataRequest(topics=None)
        assert seen[0].header_version == 2 and seen[2].header_version == 1
        assert all(event.client_id == "c" for event in seen)
        connection.receive_data(b"")
        assert connection.next_request() is CONNECTION_CLOSED


def test_frame_limit_is_checked_from_the_length_prefix() -> None:
    connection = ServerConnection(SERVED, max_frame_bytes=1024)
    good = frame(18, 0, 9, ApiVersionsRequest())
    connection.receive_data(good + struct.pack(">i", 1025))  # no body sent at all
    first = connection.next_request()
    assert isinstance(first, RequestReceived) and first.correlation_id == 9
    error = connection.next_request()
    assert isinstance(error, ProtocolError)
    assert error.action is ErrorAction.CLOSE and "exceeds" in error.reason
    assert connection.statistics().buffered_bytes == 0
    connection.receive_data(b"\x00" * 5000)  # ignored after the fatal error
    assert connection.next_request() is error


@pytest.mark.parametrize("size", [-1, -(2**31), 0, 7])
def test_negative_or_tiny_frames_close(size: int) -> None:
    connection = ServerConnection(SERVED)
    connection.receive_data(struct.pack(">i", size))
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE


def test_unknown_api_key_closes_and_garbage_header_closes() -> None:
    connection = ServerConnection(SERVED)
    payload = struct.pack(">hhi", 999, 0, 5) + b"\x00\x00"
    connection.receive_data(struct.pack(">i", len(payload)) + payload)
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE
    assert event.correlation_id == 5
    connection = ServerConnection(SERVED)
    payload = struct.pack(">hhi", 18, 0, 5) + b"\x7f"  # client id length cut short
    connection.receive_data(struct.pack(">i", len(payload)) + payload)
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE
    assert "header" in event.reason


def test_unsupported_api_versions_gets_a_v0_answer_with_our_ranges() -> None:
    connection = ServerConnection(SERVED)
    # A v4 request (newer than we serve) in a body we may not even understand.
    payload = struct.pack(">hhi", 18, 4, 77) + b"\x00\x01c\x00" + b"\x02x\x021\x00"
    connection.receive_data(struct.pack(">i", len(payload)) + payload)
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.RESPOND
    assert event.error_code == ErrorCode.UNSUPPORTED_VERSION
    response = connection.send_error_response(event)
    size, correlation_id = struct.unpack_from(">ii", response)
    assert size == len(response) - 4 and correlation_id == 77
    body = ApiVersionsResponse.decode(response[8:], 0)  # header v0, body v0
    assert body.error_code == 35
    assert {(k.api_key, k.min_version, k.max_version) for k in body.api_keys} == {
        (key, low, high) for key, (low, high) in SERVED.items()
    }


def test_unsupported_version_of_other_apis() -> None:
    connection = ServerConnection(SERVED)
    # Fetch v3 is in the schemas but not served; FetchResponse v3 has no error_code: close.
    connection.receive_data(frame(1, 3, 1, API_SPECS[1].request_class()))
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE
    assert event.error_code == ErrorCode.UNSUPPORTED_VERSION
    # Metadata with a version beyond the schemas: close too.
    connection = ServerConnection({3: (0, 5)})
    connection.receive_data(frame(3, 7, 1, MetadataRequest()))
    assert connection.next_request().action is ErrorAction.CLOSE  # type: ignore[union-attr]


def test_bad_body_answers_invalid_request_where_the_response_can_say_so() -> None:
    connection = ServerConnection(SERVED)
    header = encode_request_header(
        RequestHeader(request_api_key=18, request_api_version=3, correlation_id=4, client_id="")
    )
    payload = header + b"\x05ab"  # compact string claiming 4 bytes, 2 present
    connection.receive_data(struct.pack(">i", len(payload)) + payload)
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.RESPOND
    assert event.error_code == ErrorCode.INVALID_REQUEST
    response = connection.send_error_response(event)
    assert ApiVersionsResponse.decode(response[8:], 3).error_code == 42


def test_responses_are_framed_with_the_right_header_and_in_order() -> None:
    connection = ServerConnection(SERVED)
    connection.receive_data(
        frame(3, 12, 10, MetadataRequest()) + frame(3, 8, 11, MetadataRequest())
    )
    first, second = connection.next_request(), connection.next_request()
    assert isinstance(first, RequestReceived) and isinstance(second, RequestReceived)
    with pytest.raises(LocalProtocolError, match="out of order"):
        connection.send_response(second, MetadataResponse())
    with pytest.raises(LocalProtocolError, match="needs a MetadataResponse"):
        connection.send_response(first, ProduceResponse())
    flexible = connection.send_response(first, MetadataResponse(cluster_id="k"))
    assert flexible[4:9] == b"\x00\x00\x00\x0a\x00"  # correlation id + empty header tags
    assert MetadataResponse.decode(flexible[9:], 12).cluster_id == "k"
    plain = connection.send_response(second, MetadataResponse(cluster_id="k"))
    assert struct.unpack_from(">ii", plain) == (len(plain) - 4, 11)
    assert MetadataResponse.decode(plain[8:], 8).cluster_id == "k"
    with pytest.raises(LocalProtocolError, match="not awaiting"):
        connection.send_response(second, MetadataResponse())


def test_produce_with_acks_zero_expects_no_response() -> None:
    connection = ServerConnection(SERVED)
    connection.receive_data(frame(0, 9, 1, ProduceRequest(acks=0, timeout_ms=5)))
    event = connection.next_request()
    assert isinstance(event, RequestReceived) and not event.expects_response
    assert connection.statistics().awaiting_responses == 0


def test_eof_mid_frame_is_an_error() -> None:
    connection = ServerConnection(SERVED)
    connection.receive_data(frame(18, 0, 1, ApiVersionsRequest())[:-1])
    assert connection.next_request() is NEED_DATA
    connection.receive_data(b"")
    event = connection.next_request()
    assert isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE


def test_constructor_rejects_versions_outside_the_schemas() -> None:
    with pytest.raises(ValueError):
        ServerConnection({0: (0, 99)})
    with pytest.raises(ValueError):
        ServerConnection({12345: (0, 0)})


def test_produce_records_are_a_view_of_the_frame_and_fetch_records_are_not_copied() -> None:
    records = bytes(range(256)) * 4096  # 1 MiB
    request = ProduceRequest(
        acks=-1,
        timeout_ms=1000,
        topic_data=[TopicProduceData(name="t", partition_data=[PartitionProduceData(0, records)])],
    )
    connection = ServerConnection(SERVED)
    connection.receive_data(frame(0, 9, 3, request))
    event = connection.next_request()
    assert isinstance(event, RequestReceived)
    received = event.body.topic_data[0].partition_data[0].records  # type: ignore[attr-defined]
    assert isinstance(received, memoryview) and received == records
    assert received.obj is not None and len(received.obj) == event.frame_bytes  # one buffer
    connection.receive_data(frame(1, 12, 4, API_SPECS[1].request_class()))
    fetch = connection.next_request()
    blobs = [memoryview(records) for _ in range(3)]
    response = FetchResponse(
        responses=[
            FetchableTopicResponse(
                topic="t",
                partitions=[
                    PartitionData(partition_index=i, records=b) for i, b in enumerate(blobs)
                ],
            )
        ]
    )
    connection.send_response(event, ProduceResponse())
    chunks = connection.send_response_chunks(fetch, response)  # type: ignore[arg-type]
    assert sum(any(chunk is blob for blob in blobs) for chunk in chunks) == 3
    decoded = FetchResponse.decode(b"".join(chunks)[9:], 12)
    assert decoded == response


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_input_never_crashes(data: bytes) -> None:
    connection = ServerConnection(SERVED, max_frame_bytes=4096)
    connection.receive_data(data)
    for _ in range(100):
        event = connection.next_request()
        if event is NEED_DATA or (
            isinstance(event, ProtocolError) and event.action is ErrorAction.CLOSE
        ):
            break
        if isinstance(event, ProtocolError):
            connection.send_error_response(event)
