"""`raftlog topic create|list|describe|delete|alter-config`: topics over the Kafka protocol.

Any node will do: topic changes are forwarded to the controller by the node that takes
them, and every node answers metadata for the whole cluster. Offsets shown by `describe`
come from each partition's leader (ListOffsets).
"""

from __future__ import annotations

import argparse
from typing import Any

from raftlog.cli_client import Client, CommandError, check, error_name
from raftlog.protocol.messages.generated.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from raftlog.protocol.messages.generated.delete_topics_request import DeleteTopicsRequest
from raftlog.protocol.messages.generated.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from raftlog.protocol.messages.generated.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from raftlog.protocol.messages.generated.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)

CREATE_VERSION = 5
DELETE_VERSION = 4
DESCRIBE_CONFIGS_VERSION = 3
ALTER_CONFIGS_VERSION = 0
TOPIC_RESOURCE = 2
CONFIG_SET = 0
CONFIG_DELETE = 1
DYNAMIC_TOPIC_CONFIG = 1
LIST_OFFSETS_VERSION = 4
EARLIEST = -2
LATEST = -1
REQUEST_TIMEOUT_MS = 30_000


def add_parsers(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    topic = commands.add_parser("topic", help="topics: create, list, describe, delete")
    sub = topic.add_subparsers(dest="topic_command", metavar="SUBCOMMAND")
    create = sub.add_parser("create", parents=[common], help="create a topic")
    create.add_argument("topic", metavar="TOPIC")
    create.add_argument("--partitions", type=int, default=-1, help="(the node's default: 1)")
    create.add_argument(
        "--replication-factor", type=int, default=-1, help="(min(3, nodes) by default)"
    )
    create.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE", help="topic setting"
    )
    sub.add_parser("list", parents=[common], help="every topic")
    describe = sub.add_parser(
        "describe", parents=[common], help="partitions: leaders, replicas, offsets"
    )
    describe.add_argument("topic", metavar="TOPIC")
    delete = sub.add_parser("delete", parents=[common], help="delete a topic and its data")
    delete.add_argument("topic", metavar="TOPIC")
    alter = sub.add_parser("alter-config", parents=[common], help="set or delete topic settings")
    alter.add_argument("topic", metavar="TOPIC")
    alter.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="repeatable")
    alter.add_argument(
        "--delete", action="append", default=[], metavar="KEY", help="back to the default"
    )


def key_values(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise CommandError(f"{flag}: expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def run(client: Client, arguments: argparse.Namespace) -> Any:
    command = arguments.topic_command
    if command == "create":
        return create(client, arguments)
    if command == "list":
        return list_topics(client)
    if command == "describe":
        return describe(client, arguments.topic)
    if command == "delete":
        return delete(client, arguments.topic)
    return alter_config(client, arguments.topic, arguments.set, arguments.delete)


def create(client: Client, arguments: argparse.Namespace) -> dict[str, Any]:
    configs = key_values(arguments.config, "--config")
    request = CreateTopicsRequest(
        topics=[
            CreatableTopic(
                name=arguments.topic,
                num_partitions=arguments.partitions,
                replication_factor=arguments.replication_factor,
                configs=[CreatableTopicConfig(name=k, value=v) for k, v in configs.items()],
            )
        ],
        timeout_ms=REQUEST_TIMEOUT_MS,
    )
    [result] = client.request(request, CREATE_VERSION).topics  # type: ignore[attr-defined]
    check(result.error_code, f"cannot create topic {arguments.topic!r}", result.error_message)
    return {
        "topic": result.name,
        "partitions": result.num_partitions,
        "replication_factor": result.replication_factor,
        "configs": configs,
    }


def list_topics(client: Client) -> list[dict[str, Any]]:
    metadata = client.metadata(None)
    return [
        {
            "topic": topic.name,
            "partitions": len(topic.partitions),
            "replication_factor": max((len(p.replicas) for p in topic.partitions), default=0),
            "internal": topic.internal,
        }
        for topic in sorted(metadata.topics.values(), key=lambda topic: topic.name)
    ]


def describe(client: Client, name: str) -> dict[str, Any]:
    metadata = client.metadata([name])
    topic = metadata.topic(name)
    by_leader: dict[int, list[int]] = {}
    for partition in topic.partitions:
        by_leader.setdefault(partition.leader, []).append(partition.index)
    offsets: dict[tuple[int, int], int] = {}
    for leader, indexes in by_leader.items():
        address = metadata.brokers.get(leader)
        if address is None:
            continue  # no leader right now: offsets unknown
        for which in (EARLIEST, LATEST):
            request = ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsTopic(
                        name=name,
                        partitions=[
                            ListOffsetsPartition(partition_index=i, timestamp=which)
                            for i in indexes
                        ],
                    )
                ],
            )
            response = client.request(request, LIST_OFFSETS_VERSION, address)
            for answered in response.topics[0].partitions:  # type: ignore[attr-defined]
                if answered.error_code == 0:
                    offsets[(answered.partition_index, which)] = answered.offset
    return {
        "topic": name,
        "internal": topic.internal,
        "configs": describe_configs(client, name),
        "partitions": [
            {
                "partition": p.index,
                "leader": None if p.leader < 0 else p.leader,
                "epoch": p.leader_epoch,
                "replicas": ",".join(str(r) for r in p.replicas),
                "isr": ",".join(str(r) for r in p.isr),
                "start": offsets.get((p.index, EARLIEST)),
                "end": offsets.get((p.index, LATEST)),
                "error": error_name(p.error_code) if p.error_code else None,
            }
            for p in topic.partitions
        ],
    }


def describe_configs(client: Client, name: str) -> list[dict[str, Any]]:
    request = DescribeConfigsRequest(
        resources=[
            DescribeConfigsResource(
                resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=None
            )
        ]
    )
    [result] = client.request(request, DESCRIBE_CONFIGS_VERSION).results  # type: ignore[attr-defined]
    check(result.error_code, f"settings of topic {name!r}", result.error_message)
    return [
        {
            "name": entry.name,
            "value": entry.value,
            "set_on_topic": entry.config_source == DYNAMIC_TOPIC_CONFIG,
            "read_only": entry.read_only,
        }
        for entry in result.configs
    ]


def alter_config(
    client: Client, name: str, settings: list[str], deletions: list[str]
) -> dict[str, Any]:
    changes = key_values(settings, "--set")
    if not changes and not deletions:
        raise CommandError("nothing to change: give --set KEY=VALUE or --delete KEY")
    both = sorted(set(changes) & set(deletions))
    if both:
        raise CommandError(f"{both[0]!r} is both set and deleted")
    request = IncrementalAlterConfigsRequest(
        resources=[
            AlterConfigsResource(
                resource_type=TOPIC_RESOURCE,
                resource_name=name,
                configs=[
                    *(
                        AlterableConfig(name=k, config_operation=CONFIG_SET, value=v)
                        for k, v in changes.items()
                    ),
                    *(
                        AlterableConfig(name=k, config_operation=CONFIG_DELETE, value=None)
                        for k in deletions
                    ),
                ],
            )
        ]
    )
    [result] = client.request(request, ALTER_CONFIGS_VERSION).responses  # type: ignore[attr-defined]
    check(result.error_code, f"cannot alter topic {name!r}", result.error_message)
    return {"topic": name, "set": changes, "deleted": deletions}


def delete(client: Client, name: str) -> dict[str, Any]:
    request = DeleteTopicsRequest(topic_names=[name], timeout_ms=REQUEST_TIMEOUT_MS)
    [result] = client.request(request, DELETE_VERSION).responses  # type: ignore[attr-defined]
    check(result.error_code, f"cannot delete topic {name!r}", result.error_message)
    return {"topic": name, "deleted": True}


def render_text(command: str, document: Any, table: Any) -> str:
    if command == "list":
        return str(table(document))
    if command == "create":
        return (
            f"created topic {document['topic']}: {document['partitions']} partitions, "
            f"replication factor {document['replication_factor']}"
        )
    if command == "delete":
        return f"deleted topic {document['topic']}"
    if command == "alter-config":
        changed = [f"{k}={v}" for k, v in document["set"].items()] + [
            f"{k} (default)" for k in document["deleted"]
        ]
        return f"altered topic {document['topic']}: " + ", ".join(changed)
    internal = " (internal)" if document["internal"] else ""
    settings = ", ".join(
        f"{entry['name']}={entry['value']}" + ("" if entry["set_on_topic"] else " (default)")
        for entry in document["configs"]
    )
    return f"topic {document['topic']}{internal}\nsettings: {settings or '-'}\n\n" + str(
        table(document["partitions"])
    )
