"""`raftlog produce TOPIC` and `raftlog consume TOPIC`: records from a shell.

produce reads one record per stdin line, batches lines per partition (bounded in count
and bytes) and sends each batch with acks=all to the partition's leader, so a line is
reported produced only once the cluster committed it. A keyed record goes to the
partition Kafka's Java client would choose (murmur2 of the key); unkeyed lines go to
partitions in turn, one batch each.

consume fetches from each partition's leader from the chosen position and prints one
line per record (a template or JSON). With `--group` it starts from the group's
committed offsets and commits what it printed when it stops; it does not join the group
as a member (no rebalancing), so it suits inspection and scripts, not sharing work with
other consumers of the group.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

import attrs

from raftlog.cli_client import Client, ClusterMetadata, CommandError, check
from raftlog.cli_progress import Progress
from raftlog.cli_topics import EARLIEST, LATEST, key_values
from raftlog.protocol.errors import ErrorCode
from raftlog.protocol.messages.generated.fetch_request import (
    FetchPartition,
    FetchRequest,
    FetchTopic,
)
from raftlog.protocol.messages.generated.find_coordinator_request import FindCoordinatorRequest
from raftlog.protocol.messages.generated.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from raftlog.protocol.messages.generated.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from raftlog.protocol.messages.generated.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestTopic,
)
from raftlog.protocol.messages.generated.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from raftlog.protocol.records import Header, Record, build_batch, iter_batches

PRODUCE_VERSION = 8
FETCH_VERSION = 11
LIST_OFFSETS_VERSION = 4
OFFSET_FETCH_VERSION = 6
OFFSET_COMMIT_VERSION = 7
FIND_COORDINATOR_VERSION = 2

LINE_BYTES_MAX = 1 << 20
BATCH_RECORDS_MAX = 1000
BATCH_BYTES_MAX = 512 * 1024
ACKS_ALL = -1
PRODUCE_TIMEOUT_MS = 30_000
FETCH_WAIT_MS = 500
FETCH_PARTITION_BYTES_MAX = 1 << 20
FETCH_BYTES_MAX = 16 << 20
RETRIES_MAX = 20
RETRY_PAUSE_S = 0.25
RETRIABLE = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.REQUEST_TIMED_OUT,
    ErrorCode.NOT_ENOUGH_REPLICAS,
}


def add_parsers(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    bootstrap: argparse.ArgumentParser,
) -> None:
    produce = commands.add_parser(
        "produce", parents=[common], help="produce stdin lines as records (acks=all)"
    )
    produce.add_argument("topic", metavar="TOPIC")
    produce.add_argument("--key", help="the key of every record")
    produce.add_argument(
        "--key-separator", help="split each line at the first SEP into key and value"
    )
    produce.add_argument(
        "--header", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    produce.add_argument("--partition", type=int, help="all records to this partition")
    consume = commands.add_parser(
        "consume", parents=[bootstrap], help="print records (until Ctrl-C, --count or --end)"
    )
    consume.add_argument("topic", metavar="TOPIC")
    consume.add_argument(
        "--from",
        dest="start",
        default="earliest",
        metavar="POSITION",
        help="earliest (default), latest, an OFFSET, or @TIMESTAMP_MS",
    )
    consume.add_argument("--partition", type=int, action="append", help="repeatable (all)")
    consume.add_argument(
        "--group", help="start from this group's committed offsets; commit on exit"
    )
    consume.add_argument("--count", type=int, help="stop after N records")
    consume.add_argument(
        "--format",
        default="%v",
        help="'json' (one object per line) or a template of %%t %%p %%o %%T %%k %%v %%h (%%v)",
    )
    consume.add_argument("--end", action="store_true", help="stop at the end of every partition")


# -- produce ---------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner hash), as a signed int32."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def read_records(
    lines: Iterable[bytes], key: str | None, separator: str | None, headers: dict[str, str]
) -> Iterator[Record]:
    fixed_headers = tuple(Header(k, v.encode()) for k, v in headers.items())
    for number, raw in enumerate(lines, start=1):
        if len(raw) > LINE_BYTES_MAX:
            raise CommandError(f"line {number} is over {LINE_BYTES_MAX} bytes")
        line = raw[:-1] if raw.endswith(b"\n") else raw
        record_key = None if key is None else key.encode()
        value = line
        if separator is not None:
            found, sep, rest = line.partition(separator.encode())
            if not sep:
                raise CommandError(f"line {number} has no key separator {separator!r}")
            record_key, value = found, rest
        yield Record(value=value, key=record_key, headers=fixed_headers)


@attrs.define(eq=False)
class _Producer:
    client: Client
    topic: str
    metadata: ClusterMetadata
    fixed_partition: int | None
    pending: dict[int, list[Record]] = attrs.field(factory=dict)
    pending_bytes: dict[int, int] = attrs.field(factory=dict)
    produced: dict[int, list[int]] = attrs.field(factory=dict)
    """Partition -> [first offset, last offset, records]."""
    _next_unkeyed: int = 0

    @property
    def partitions(self) -> int:
        return len(self.metadata.topic(self.topic).partitions)

    def add(self, record: Record) -> None:
        partition = self._choose(record)
        batch = self.pending.setdefault(partition, [])
        batch.append(record)
        size = len(record.value or b"") + len(record.key or b"") + 64
        self.pending_bytes[partition] = self.pending_bytes.get(partition, 0) + size
        if len(batch) >= BATCH_RECORDS_MAX or self.pending_bytes[partition] >= BATCH_BYTES_MAX:
            self.send(partition)

    def _choose(self, record: Record) -> int:
        if self.fixed_partition is not None:
            return self.fixed_partition
        if record.key is not None:
            return partition_for_key(record.key, self.partitions)
        return self._next_unkeyed % self.partitions

    def flush(self) -> None:
        for partition in list(self.pending):
            self.send(partition)

    def send(self, partition: int) -> None:
        records = self.pending.pop(partition, [])
        self.pending_bytes.pop(partition, None)
        if not records:
            return
        self._next_unkeyed += 1
        batch = build_batch(records, default_timestamp_ms=int(time.time() * 1000))
        request = ProduceRequest(
            acks=ACKS_ALL,
            timeout_ms=PRODUCE_TIMEOUT_MS,
            topic_data=[
                TopicProduceData(
                    name=self.topic,
                    partition_data=[PartitionProduceData(index=partition, records=batch)],
                )
            ],
        )
        for _attempt in range(RETRIES_MAX):
            address = self.metadata.leader_address(self.topic, partition)
            response = self.client.request(request, PRODUCE_VERSION, address)
            answer = response.responses[0].partition_responses[0]  # type: ignore[attr-defined]
            if answer.error_code in RETRIABLE:
                time.sleep(RETRY_PAUSE_S)
                self.metadata = self.client.metadata([self.topic])
                continue
            check(answer.error_code, f"produce to {self.topic}/{partition}", answer.error_message)
            first = answer.base_offset
            last = first + len(records) - 1
            known = self.produced.setdefault(partition, [first, last, 0])
            known[1], known[2] = last, known[2] + len(records)
            return
        raise CommandError(f"{self.topic}/{partition} found no leader after {RETRIES_MAX} tries")


def produce(client: Client, arguments: argparse.Namespace, stdin: IO[bytes]) -> dict[str, Any]:
    if arguments.key is not None and arguments.key_separator is not None:
        raise CommandError("--key and --key-separator exclude each other")
    if arguments.key_separator == "":
        raise CommandError("--key-separator must not be empty")
    headers = key_values(arguments.header, "--header")
    metadata = client.metadata_with_leaders(arguments.topic)
    topic = metadata.topic(arguments.topic)
    if arguments.partition is not None and not 0 <= arguments.partition < len(topic.partitions):
        raise CommandError(
            f"topic {arguments.topic!r} has partitions 0-{len(topic.partitions) - 1}"
        )
    producer = _Producer(client, arguments.topic, metadata, arguments.partition)
    lines = iter(lambda: stdin.readline(LINE_BYTES_MAX + 1), b"")
    progress = Progress("records read")
    for count, record in enumerate(
        read_records(lines, arguments.key, arguments.key_separator, headers), 1
    ):
        producer.add(record)
        progress.update(count)
    producer.flush()
    progress.done()
    return {
        "topic": arguments.topic,
        "records": sum(entry[2] for entry in producer.produced.values()),
        "partitions": {
            str(partition): {"first_offset": entry[0], "last_offset": entry[1], "records": entry[2]}
            for partition, entry in sorted(producer.produced.items())
        },
    }


def render_text(document: dict[str, Any]) -> str:
    ranges = ", ".join(
        f"partition {p} offsets {e['first_offset']}-{e['last_offset']}"
        for p, e in document["partitions"].items()
    )
    return f"produced {document['records']} records to {document['topic']}" + (
        f" ({ranges})" if ranges else ""
    )


# -- consume ---------------------------------------------------------------------------


def _list_offsets(
    client: Client, metadata: ClusterMetadata, topic: str, partitions: list[int], timestamp: int
) -> dict[int, int]:
    found = {}
    for partition in partitions:
        request = ListOffsetsRequest(
            replica_id=-1,
            topics=[
                ListOffsetsTopic(
                    name=topic,
                    partitions=[
                        ListOffsetsPartition(partition_index=partition, timestamp=timestamp)
                    ],
                )
            ],
        )
        address = metadata.leader_address(topic, partition)
        answer = client.request(request, LIST_OFFSETS_VERSION, address).topics[0].partitions[0]  # type: ignore[attr-defined]
        check(answer.error_code, f"offsets of {topic}/{partition}")
        found[partition] = answer.offset
    return found


def start_positions(
    client: Client, metadata: ClusterMetadata, topic: str, partitions: list[int], start: str
) -> dict[int, int]:
    """Where each partition starts for `--from`."""
    if start == "earliest":
        return _list_offsets(client, metadata, topic, partitions, EARLIEST)
    if start == "latest":
        return _list_offsets(client, metadata, topic, partitions, LATEST)
    if start.startswith("@") and start[1:].isdigit():
        by_time = _list_offsets(client, metadata, topic, partitions, int(start[1:]))
        latest = _list_offsets(client, metadata, topic, partitions, LATEST)
        # No record at or after the time: start at the end, as Kafka's consumers do.
        return {p: latest[p] if offset < 0 else offset for p, offset in by_time.items()}
    if start.isdigit():
        return dict.fromkeys(partitions, int(start))
    raise CommandError(
        f"--from: expected earliest, latest, an offset or @TIMESTAMP_MS, got {start!r}"
    )


def _coordinator(client: Client, group: str) -> str:
    response = client.request(
        FindCoordinatorRequest(key=group, key_type=0), FIND_COORDINATOR_VERSION
    )
    check(response.error_code, f"coordinator of group {group!r}", response.error_message)  # type: ignore[attr-defined]
    return f"{response.host}:{response.port}"  # type: ignore[attr-defined]


def committed_offsets(
    client: Client, group: str, topic: str, partitions: list[int]
) -> dict[int, int]:
    request = OffsetFetchRequest(
        group_id=group, topics=[OffsetFetchRequestTopic(name=topic, partition_indexes=partitions)]
    )
    response = client.request(request, OFFSET_FETCH_VERSION, _coordinator(client, group))
    check(response.error_code, f"offsets of group {group!r}")  # type: ignore[attr-defined]
    return {
        answer.partition_index: answer.committed_offset
        for answered in response.topics  # type: ignore[attr-defined]
        for answer in answered.partitions
        if answer.error_code == 0 and answer.committed_offset >= 0
    }


def commit_offsets(client: Client, group: str, topic: str, positions: dict[int, int]) -> None:
    """A standalone commit (generation -1, no member), as Kafka allows for manual assignment."""
    request = OffsetCommitRequest(
        group_id=group,
        topics=[
            OffsetCommitRequestTopic(
                name=topic,
                partitions=[
                    OffsetCommitRequestPartition(partition_index=p, committed_offset=offset)
                    for p, offset in sorted(positions.items())
                ],
            )
        ],
    )
    response = client.request(request, OFFSET_COMMIT_VERSION, _coordinator(client, group))
    for answered in response.topics:  # type: ignore[attr-defined]
        for answer in answered.partitions:
            check(answer.error_code, f"commit of {topic}/{answer.partition_index} for {group!r}")


@attrs.frozen
class Formatter:
    """One output line per record: JSON, or a template with %t %p %o %k %v %T %h %%."""

    template: str

    def line(self, topic: str, partition: int, record: Record) -> bytes:
        if self.template == "json":
            document = {
                "topic": topic,
                "partition": partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": _text(record.key),
                "value": _text(record.value),
                "headers": {h.key: _text(h.value) for h in record.headers},
            }
            return json.dumps(document).encode() + b"\n"
        out = bytearray()
        template = self.template.replace("\\n", "\n").replace("\\t", "\t")
        index = 0
        while index < len(template):
            char = template[index]
            if char != "%" or index + 1 == len(template):
                out += char.encode()
                index += 1
                continue
            code = template[index + 1]
            index += 2
            out += self._field(code, topic, partition, record)
        return bytes(out) + b"\n"

    @staticmethod
    def _field(code: str, topic: str, partition: int, record: Record) -> bytes:
        fields: dict[str, bytes] = {
            "t": topic.encode(),
            "p": str(partition).encode(),
            "o": str(record.offset).encode(),
            "T": str(record.timestamp).encode(),
            "k": record.key if record.key is not None else b"",
            "v": record.value if record.value is not None else b"",
            "h": ",".join(f"{h.key}={_text(h.value)}" for h in record.headers).encode(),
            "%": b"%",
        }
        if code not in fields:
            raise CommandError(f"--format: unknown field %{code} (use %t %p %o %T %k %v %h %%)")
        return fields[code]


def _text(data: bytes | None) -> str | None:
    """UTF-8 text as is; other bytes as base64 prefixed `base64:`."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


@attrs.define(eq=False)
class _Consumer:
    client: Client
    topic: str
    metadata: ClusterMetadata
    positions: dict[int, int]
    ends: dict[int, int] = attrs.field(factory=dict)

    def fetch_round(self) -> Iterator[tuple[int, Record]]:
        """One fetch per leader; yields (partition, record) in offset order per partition."""
        by_leader: dict[str, list[int]] = {}
        for partition in sorted(self.positions):
            address = self.metadata.leader_address(self.topic, partition)
            by_leader.setdefault(address, []).append(partition)
        for address, partitions in by_leader.items():
            request = FetchRequest(
                replica_id=-1,
                max_wait_ms=FETCH_WAIT_MS,
                min_bytes=1,
                max_bytes=FETCH_BYTES_MAX,
                topics=[
                    FetchTopic(
                        topic=self.topic,
                        partitions=[
                            FetchPartition(
                                partition=p,
                                fetch_offset=self.positions[p],
                                partition_max_bytes=FETCH_PARTITION_BYTES_MAX,
                            )
                            for p in partitions
                        ],
                    )
                ],
            )
            response = self.client.request(request, FETCH_VERSION, address)
            check(response.error_code, f"fetch from {address}")  # type: ignore[attr-defined]
            for answered in response.responses[0].partitions:  # type: ignore[attr-defined]
                yield from self._records(answered)

    def _records(self, answered: Any) -> Iterator[tuple[int, Record]]:
        partition = answered.partition_index
        if answered.error_code in RETRIABLE:
            time.sleep(RETRY_PAUSE_S)
            self.metadata = self.client.metadata([self.topic])
            return
        if answered.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
            raise CommandError(
                f"{self.topic}/{partition}: offset {self.positions[partition]} is out of range "
                f"(the partition holds {answered.log_start_offset}-{answered.high_watermark})"
            )
        check(answered.error_code, f"fetch {self.topic}/{partition}")
        self.ends[partition] = answered.high_watermark
        for batch in iter_batches(bytes(answered.records or b"")):
            if batch.last_offset < self.positions[partition]:
                continue
            if not batch.is_control:
                for record in batch.records():
                    if record.offset is not None and record.offset >= self.positions[partition]:
                        yield partition, record
            self.positions[partition] = batch.last_offset + 1

    def at_end(self) -> bool:
        return bool(self.ends) and all(
            self.positions[p] >= self.ends.get(p, self.positions[p] + 1) for p in self.positions
        )


def consume(client: Client, arguments: argparse.Namespace, stdout: IO[bytes]) -> dict[str, Any]:
    if arguments.count is not None and arguments.count < 1:
        raise CommandError("--count must be at least 1")
    formatter = Formatter(arguments.format)
    metadata = client.metadata_with_leaders(arguments.topic)
    available = [p.index for p in metadata.topic(arguments.topic).partitions]
    wanted = arguments.partition or available
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise CommandError(f"topic {arguments.topic!r} has no partition {missing[0]}")
    positions = start_positions(
        client, metadata, arguments.topic, sorted(set(wanted)), arguments.start
    )
    if arguments.group:
        positions.update(
            committed_offsets(client, arguments.group, arguments.topic, list(positions))
        )
    consumer = _Consumer(client, arguments.topic, metadata, positions)
    printed = 0
    try:
        while arguments.count is None or printed < arguments.count:
            for partition, record in consumer.fetch_round():
                stdout.write(formatter.line(arguments.topic, partition, record))
                printed += 1
                if arguments.count is not None and printed >= arguments.count:
                    # Stop right after this record: later ones were not printed.
                    consumer.positions[partition] = int(record.offset or 0) + 1
                    break
            stdout.flush()
            if arguments.end and consumer.at_end():
                break
    except KeyboardInterrupt:
        pass
    finally:
        stdout.flush()
        if arguments.group:
            commit_offsets(client, arguments.group, arguments.topic, consumer.positions)
    return {"topic": arguments.topic, "records": printed, "positions": consumer.positions}
