"""Kafka codec micro-benchmarks: the hot-path messages against a memcpy ceiling.

`measure(quick)` returns one dict per scenario;
`run(settings)` gives the harness its Results. The ceiling is a
plain memcpy (memoryview slice assignment into a preallocated buffer) of the same bytes
measured in the same run, so the ratio survives noisy machines: the codec promises to
copy a records blob at most once, so decoding a Produce request should cost no more
than one memcpy of its frame, and encoding a Fetch response about one memcpy.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from benches.common import Result, Settings, results_from_rows
from raftlog.protocol.api_keys import ApiKey
from raftlog.protocol.connection import RequestReceived, ServerConnection
from raftlog.protocol.headers import RequestHeader, encode_request_header
from raftlog.protocol.messages.generated.fetch_request import FetchRequest
from raftlog.protocol.messages.generated.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)

MIB = 1024 * 1024


def _best_seconds(action: Callable[[], object], repeat: int, inner: int) -> float:
    """Best-of-`repeat` seconds per call: the least disturbed measurement."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            action()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def _memcpy_seconds(size: int, repeat: int, inner: int) -> float:
    source = memoryview(bytes(range(256)) * (size // 256 + 1))[:size]
    target = memoryview(bytearray(size))

    def copy() -> None:
        target[:] = source

    return _best_seconds(copy, repeat, inner)


def _frame(api_key: int, version: int, body: ProduceRequest | FetchRequest) -> bytes:
    header = RequestHeader(
        request_api_key=api_key, request_api_version=version, correlation_id=1, client_id="b"
    )
    payload = encode_request_header(header) + body.encode(version)
    return struct.pack(">i", len(payload)) + payload


def _row(
    scenario: str,
    metric: str,
    value: float,
    unit: str,
    ceiling_name: str,
    ceiling_value: float,
    target_ratio: float,
    notes: str,
) -> dict[str, object]:
    return {
        "scenario": scenario,
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "ceiling_name": ceiling_name,
        "ceiling_value": round(ceiling_value, 2),
        "ratio": round(value / ceiling_value, 3) if ceiling_value else None,
        "target_ratio": target_ratio,
        "notes": notes,
    }


def measure(quick: bool) -> list[dict[str, object]]:
    repeat, inner = (3, 5) if quick else (7, 20)
    records = bytes(range(256)) * (MIB // 256)
    rows = []

    # 1. ProduceRequest v9 with one 1 MiB blob: body decode only (zero copy).
    produce = ProduceRequest(
        acks=-1,
        timeout_ms=30000,
        topic_data=[TopicProduceData(name="t", partition_data=[PartitionProduceData(0, records)])],
    )
    body = produce.encode(9)
    decode_s = _best_seconds(lambda: ProduceRequest.decode(body, 9), repeat, inner * 10)
    memcpy_s = _memcpy_seconds(len(body), repeat, inner)
    rows.append(
        _row(
            "produce-request-v9-1MiB-decode",
            "decodes per second",
            1 / decode_s,
            "decodes/s",
            "memcpy of the same bytes",
            1 / memcpy_s,
            1.0,
            "records stay a memoryview of the input; ratio > 1 means cheaper than one copy",
        )
    )

    # 2. The same request through the connection: framing (the one copy) + header + body.
    frame = _frame(ApiKey.PRODUCE, 9, produce)

    def receive() -> None:
        connection = ServerConnection({ApiKey.PRODUCE: (0, 10)})
        connection.receive_data(frame)
        event = connection.next_request()
        assert isinstance(event, RequestReceived)

    receive_s = _best_seconds(receive, repeat, inner)
    rows.append(
        _row(
            "produce-request-v9-1MiB-receive",
            "throughput",
            len(frame) / receive_s / 1e6,
            "MB/s",
            "memcpy of the same bytes",
            len(frame) / memcpy_s / 1e6,
            0.5,
            "receive_data copies the frame once into its own buffer; decode adds no copy",
        )
    )

    # 3. FetchResponse v12 with 10 partitions x 1 MiB: framed encode (one join copy).
    views = [memoryview(bytes(records)) for _ in range(10)]
    fetch = FetchResponse(
        responses=[
            FetchableTopicResponse(
                topic="t",
                partitions=[
                    PartitionData(partition_index=i, high_watermark=10, records=view)
                    for i, view in enumerate(views)
                ],
            )
        ]
    )
    connection = ServerConnection({ApiKey.FETCH: (4, 12)})
    fetch_frame = _frame(ApiKey.FETCH, 12, FetchRequest())

    def encode_fetch() -> bytes:
        connection.receive_data(fetch_frame)
        event = connection.next_request()
        assert isinstance(event, RequestReceived)
        return connection.send_response(event, fetch)

    size = len(encode_fetch())
    fetch_s = _best_seconds(encode_fetch, repeat, max(inner // 4, 2))
    fetch_memcpy_s = _memcpy_seconds(size, repeat, max(inner // 4, 2))
    rows.append(
        _row(
            "fetch-response-v12-10x1MiB-encode",
            "throughput",
            size / fetch_s / 1e6,
            "MB/s",
            "memcpy of the same bytes",
            size / fetch_memcpy_s / 1e6,
            0.5,
            "records are joined once into the framed bytes; send_response_chunks skips even that",
        )
    )

    # 4. Per-request overhead: a Produce request with 20 partitions of 1 KiB each.
    small = ProduceRequest(
        acks=1,
        timeout_ms=1000,
        topic_data=[
            TopicProduceData(
                name=f"topic-{t}",
                partition_data=[PartitionProduceData(p, records[:1024]) for p in range(4)],
            )
            for t in range(5)
        ],
    )
    small_body = small.encode(9)
    small_s = _best_seconds(lambda: ProduceRequest.decode(small_body, 9), repeat, inner * 50)
    small_memcpy_s = _memcpy_seconds(len(small_body), repeat, inner * 50)
    rows.append(
        _row(
            "produce-request-v9-20x1KiB-decode",
            "decodes per second",
            1 / small_s,
            "decodes/s",
            "memcpy of the same bytes",
            1 / small_memcpy_s,
            0.01,
            "per-object Python cost dominates small requests; shows codec overhead",
        )
    )
    return rows


if __name__ == "__main__":
    for row in measure(quick=False):
        print(row)


def run(settings: Settings) -> list[Result]:
    """The harness's entry point (`python -m benches`)."""
    return results_from_rows(measure(settings.quick))
