"""Every advertised version of the data path: real clients pinned to old brokers, then
our own codec for the versions no installed client sends.

kafka-python can be told which broker release to assume (`api_version`) and then uses
that release's request versions. Pinning it from 0.11 (the first with record batches) to
4.0 makes real client code send Produce, Fetch, ListOffsets and Metadata across most of
their ranges and parse our answers at each version, which is where a response field a
version cannot carry (`fit_to_version`) or an old Fetch expectation would break. A proxy
records which (api key, version) pairs went over the wire, so the matrix cannot quietly
shrink. (aiokafka 0.14 ignores `api_version` for these requests: Produce v7, Fetch v11,
ListOffsets v3, Metadata v5, whatever it is told; librdkafka sends the newest we offer.)
The rest is driven with raw requests, reading the records back at every Fetch version.
"""

from __future__ import annotations

import pytest

from raftlog.kafka.handlers import SUPPORTED_VERSIONS
from raftlog.protocol.messages.generated.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
)
from raftlog.protocol.messages.generated.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from raftlog.protocol.messages.generated.metadata_request import (
    MetadataRequest,
    MetadataRequestTopic,
)
from raftlog.protocol.messages.generated.metadata_response import MetadataResponse
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.records import Record, build_batch, iter_batches

from .conftest import NodeFactory, NodeProcess
from .helpers import (
    CLIENT_TIMEOUT_S,
    CuttableProxy,
    Rec,
    assert_same_records,
    call,
    make_records,
)

pytestmark = pytest.mark.clients

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
KAFKA_PYTHON_BROKERS = [
    (0, 11), (1, 0), (1, 1), (2, 0), (2, 1), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7),
    (2, 8), (3, 0), (3, 5), (3, 9), (4, 0), None,
]
RECORDS_PER_RUN = 200


def _kafka_python_run(bootstrap: str, broker: tuple[int, int] | None, seed: int) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"kp-{seed}"
    pinned = {} if broker is None else {"api_version": broker}
    records = make_records(RECORDS_PER_RUN, seed=seed)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, max_block_ms=10_000,
        compression_type="gzip", **pinned,
    )
    try:
        futures = [
            producer.send(topic, key=r.key, value=r.value, headers=list(r.headers), partition=0)
            for r in records
        ]
        producer.flush(CLIENT_TIMEOUT_S)
        acked = [future.get(timeout=CLIENT_TIMEOUT_S).offset for future in futures]
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000,
        consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000), fetch_max_bytes=64 * 1024, **pinned,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        consumed: list[Rec] = []
        offsets: list[int] = []
        for message in consumer:
            consumed.append(Rec(message.key, message.value, tuple(message.headers)))
            offsets.append(message.offset)
            if len(consumed) == len(records):
                break
        assert consumer.beginning_offsets([partition]) == {partition: 0}
        assert consumer.end_offsets([partition]) == {partition: acked[-1] + 1}
    finally:
        consumer.close()
    assert_same_records(records, consumed, offsets, acked)


def _seen(proxy: CuttableProxy, api_key: int) -> set[int]:
    return {version for key, version in proxy.requests_seen if key == api_key}


def test_kafka_python_across_broker_versions(
    proxied: tuple[str, CuttableProxy], node_factory: NodeFactory
) -> None:
    bootstrap, proxy = proxied
    for seed, broker in enumerate(KAFKA_PYTHON_BROKERS, start=100):
        try:
            _kafka_python_run(bootstrap, broker, seed)
        except AssertionError as error:
            raise AssertionError(f"kafka-python pinned to broker {broker}: {error}") from None
    # What these pins make kafka-python 3.0 send; the matrix must not quietly shrink.
    assert {3, 5, 6, 7, 8, 9} <= _seen(proxy, PRODUCE), sorted(_seen(proxy, PRODUCE))
    assert {5, 6, 7, 8, 10, 11, 12} <= _seen(proxy, FETCH), sorted(_seen(proxy, FETCH))
    assert {2, 3, 4, 5, 6, 7} <= _seen(proxy, LIST_OFFSETS)
    assert {4, 5, 6, 7, 8, 9, 11, 12} <= _seen(proxy, METADATA)
    assert (18, 4) in proxy.requests_seen  # kafka-python 3 opens with ApiVersions v4 ...
    (node,) = node_factory.nodes
    assert "event=kafka_protocol_error" not in node.log()  # ... which is served


# -- the versions no installed client sends -------------------------------------------


def _served(api_key: int, lowest: int = 0) -> range:
    low, high = SUPPORTED_VERSIONS[api_key]
    return range(max(low, lowest), high + 1)


def _address(proxy_or_node: str) -> tuple[str, int]:
    host, port = proxy_or_node.rsplit(":", 1)
    return host, int(port)


def test_every_advertised_version_serves_the_data(node: NodeProcess) -> None:
    """Real clients leave gaps (Produce v4, Fetch v4 and v9, ListOffsets v1, Metadata
    v0-3 and v10 above): drive every advertised version with our own codec, and read the
    records back at each Fetch version."""
    address = _address(node.bootstrap)
    topic = "every-version"
    produced: list[bytes] = []
    acked: list[int] = []
    first_batch_version = 3  # v0-2 carry only old message sets: see test_produce_modes
    for version in _served(PRODUCE, first_batch_version):
        value = b"produced with v%d" % version
        request = ProduceRequest(
            transactional_id=None, acks=-1, timeout_ms=5_000,
            topic_data=[TopicProduceData(name=topic, partition_data=[
                PartitionProduceData(index=0, records=build_batch([Record(value=value)]))
            ])],
        )
        if version == first_batch_version:
            _metadata(address, topic, 4, create=True)
        response = call(address, PRODUCE, version, request)
        (partition,) = response.responses[0].partition_responses
        assert partition.error_code == 0, (version, partition)
        produced.append(value)
        acked.append(partition.base_offset)
    assert acked == sorted(acked)

    for version in _served(FETCH):
        request = FetchRequest(
            replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=[FetchTopic(topic=topic, partitions=[
                FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
            ])],
        )
        response = call(address, FETCH, version, request)
        (partition,) = response.responses[0].partitions
        assert partition.error_code == 0, (version, partition)
        assert partition.high_watermark == acked[-1] + 1
        values, offsets = [], []
        for batch in iter_batches(partition.records or b""):
            if batch.is_control:
                continue  # our own NOOP: clients skip it as they skip transaction markers
            for record in batch.records():
                values.append(record.value)
                offsets.append(record.offset)
        assert (values, offsets) == (produced, acked), f"Fetch v{version}"

    for version in _served(LIST_OFFSETS):
        found = {}
        for timestamp in (-2, -1):
            request = ListOffsetsRequest(
                replica_id=-1, isolation_level=0,
                topics=[ListOffsetsTopic(name=topic, partitions=[
                    ListOffsetsPartition(partition_index=0, timestamp=timestamp)
                ])],
            )
            response = call(address, LIST_OFFSETS, version, request)
            (partition,) = response.topics[0].partitions
            assert partition.error_code == 0, (version, partition)
            found[timestamp] = partition.offset
        assert found == {-2: 0, -1: acked[-1] + 1}, f"ListOffsets v{version}"

    for version in _served(METADATA):
        response = _metadata(address, topic, version, create=False)
        assert [(b.host, b.port) for b in response.brokers] == [address], version
        (described,) = response.topics
        assert (described.error_code, described.name) == (0, topic), version
        assert [p.leader_id for p in described.partitions] == [response.brokers[0].node_id]


def _metadata(
    address: tuple[str, int], topic: str, version: int, *, create: bool
) -> MetadataResponse:
    request = MetadataRequest(topics=[MetadataRequestTopic(name=topic)])
    if version >= 4:
        request.allow_auto_topic_creation = create
    response = call(address, METADATA, version, request)
    assert isinstance(response, MetadataResponse)
    return response
