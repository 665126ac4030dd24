"""`raftlog cluster status`, `raftlog segment list TOPIC/PARTITION`, `raftlog partition
transfer-leader TOPIC PARTITION --to N` and `raftlog cluster transfer-controller --to N`:
the admin API's view, and its two actions.

All use one node's admin HTTP API (`--admin`, default 127.0.0.1:9644). Every node
knows the whole cluster's metadata; leaders, terms, high watermarks and replica lag are
known for the segments that node hosts (with replication factor = cluster size, all of
them). A segment hosted elsewhere shows `-` for those columns.
"""

from __future__ import annotations

import argparse
import http.client
import json
from typing import Any
from urllib.parse import quote

from raftlog.cli_client import CommandError

DEFAULT_ADMIN = "127.0.0.1:9644"
TIMEOUT_S = 10.0
RESPONSE_BYTES_MAX = 64 << 20


class AdminUnreachable(ConnectionError):
    """No admin endpoint answers at the address."""


def add_parsers(commands: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    admin = argparse.ArgumentParser(add_help=False)
    admin.add_argument(
        "--admin", default=DEFAULT_ADMIN, help=f"a node's admin HTTP address ({DEFAULT_ADMIN})"
    )
    cluster = commands.add_parser("cluster", help="the cluster as one node sees it")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND")
    cluster_sub.add_parser(
        "status",
        parents=[admin, output],
        help="nodes, controller leader, every partition's segments, leaders, terms and lag",
    )
    controller = cluster_sub.add_parser(
        "transfer-controller",
        parents=[admin, output],
        help="make a controller voter the controller group's leader (forwarded to the leader)",
    )
    _transfer_arguments(controller, "the node id of the controller voter to lead")
    decommission = cluster_sub.add_parser(
        "decommission",
        parents=[admin, output],
        help="drain a node: its replicas move to the others, then it leaves the node list",
    )
    decommission.add_argument("node", metavar="NODE", type=int, help="the node id to drain")
    segment = commands.add_parser("segment", help="the segments of a partition")
    segment_sub = segment.add_subparsers(dest="segment_command", metavar="SUBCOMMAND")
    listing = segment_sub.add_parser(
        "list", parents=[admin, output], help="one partition's segment chain"
    )
    listing.add_argument("target", metavar="TOPIC/PARTITION")
    partition = commands.add_parser("partition", help="partition actions")
    partition_sub = partition.add_subparsers(dest="partition_command", metavar="SUBCOMMAND")
    transfer = partition_sub.add_parser(
        "transfer-leader",
        parents=[admin, output],
        help="make a replica the partition's leader (any node forwards it to the leader)",
    )
    transfer.add_argument("topic", metavar="TOPIC")
    transfer.add_argument("partition", metavar="PARTITION", type=int)
    _transfer_arguments(transfer, "the node id of the replica to lead")


def _transfer_arguments(parser: argparse.ArgumentParser, to_help: str) -> None:
    parser.add_argument("--to", dest="to", type=int, required=True, metavar="NODE", help=to_help)
    parser.add_argument(
        "--timeout-ms",
        dest="timeout_ms",
        type=int,
        default=10_000,
        help="give up after this long (10000; at most 60000)",
    )


def get(admin: str, path: str) -> Any:
    """GET a JSON document from the admin API."""
    return _request(admin, "GET", path, TIMEOUT_S)


def _request(admin: str, method: str, path: str, timeout_s: float) -> Any:
    host, _, port = admin.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"--admin: expected HOST:PORT, got {admin!r}")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read(RESPONSE_BYTES_MAX + 1)
    except OSError as error:
        raise AdminUnreachable(
            f"no node at {admin} ({getattr(error, 'strerror', None) or error}) — is "
            "`raftlog serve` running? (cluster and segment commands use the admin API, --admin)"
        ) from error
    finally:
        connection.close()
    if len(body) > RESPONSE_BYTES_MAX:
        raise CommandError(f"{admin}{path}: answer over {RESPONSE_BYTES_MAX} bytes")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise CommandError(f"{admin}{path} did not answer JSON (HTTP {response.status})") from error
    if response.status != 200:
        raise CommandError(f"{admin}{path}: {document.get('error', response.status)}")
    return document


def _link(connected: bool | None) -> str:
    return "up" if connected else "down"


def _lag(segment: dict[str, Any]) -> str | None:
    lag = segment.get("replica_lag")
    if not lag:
        return None
    return ",".join(f"{node}:{behind}" for node, behind in sorted(lag.items()))


def _segment_row(segment: dict[str, Any]) -> dict[str, Any]:
    return {
        "group": segment["group_id"],
        "base_offset": segment["base_offset"],
        "last_offset": segment["last_offset"],
        "state": segment["state"],
        "leader": segment["leader"],
        "term": segment["term"],
        "high_watermark": segment["high_watermark"],
        "replicas": ",".join(str(r) for r in segment["replicas"]),
        "lag": _lag(segment),
        "bytes": segment["size_bytes"],
    }


def status(admin: str) -> dict[str, Any]:
    cluster = get(admin, "/v1/cluster")
    partitions = []
    for topic in get(admin, "/v1/topics")["topics"]:
        document = get(admin, f"/v1/topics/{quote(topic['name'], safe='')}/partitions")
        partitions.extend(document["partitions"])
    return {"cluster": cluster, "partitions": partitions}


def segment_list(admin: str, target: str) -> dict[str, Any]:
    topic, separator, index_text = target.rpartition("/")
    if not separator or not topic or not index_text.isdigit():
        raise CommandError(f"expected TOPIC/PARTITION, got {target!r}")
    document = get(admin, f"/v1/topics/{quote(topic, safe='')}/partitions")
    for partition in document["partitions"]:
        if partition["partition"] == int(index_text):
            return partition  # type: ignore[no-any-return]
    raise CommandError(f"topic {topic!r} has no partition {index_text}")


def transfer_leader(admin: str, topic: str, partition: int, target: int, timeout_ms: int) -> Any:
    path = f"/v1/partitions/{quote(topic, safe='')}/{partition}/transfer-leader"
    return _transfer(admin, path, target, timeout_ms)


def transfer_controller(admin: str, target: int, timeout_ms: int) -> Any:
    return _transfer(admin, "/v1/controller/transfer-leader", target, timeout_ms)


def _transfer(admin: str, path: str, target: int, timeout_ms: int) -> Any:
    if timeout_ms <= 0:
        raise CommandError("--timeout-ms must be positive")
    query = f"?target={target}&timeout_ms={timeout_ms}"
    return _request(admin, "POST", path + query, TIMEOUT_S + timeout_ms / 1000)


def decommission(admin: str, node: int) -> Any:
    return _request(admin, "POST", f"/v1/nodes/{node}/decommission", TIMEOUT_S)


def view_name(arguments: argparse.Namespace) -> str:
    """Which rendering `render_text` uses for the command line's (sub)command."""
    if arguments.command == "cluster" and arguments.cluster_command in (
        "transfer-controller",
        "decommission",
    ):
        return str(arguments.cluster_command)
    return str(arguments.command)


def run(arguments: argparse.Namespace) -> Any:
    if arguments.command == "cluster" and arguments.cluster_command == "transfer-controller":
        return transfer_controller(arguments.admin, arguments.to, arguments.timeout_ms)
    if arguments.command == "cluster" and arguments.cluster_command == "decommission":
        return decommission(arguments.admin, arguments.node)
    if arguments.command == "cluster":
        return status(arguments.admin)
    if arguments.command == "partition":
        return transfer_leader(
            arguments.admin, arguments.topic, arguments.partition, arguments.to,
            arguments.timeout_ms,
        )  # fmt: skip
    return segment_list(arguments.admin, arguments.target)


def render_text(command: str, document: dict[str, Any], table: Any) -> str:
    if command == "decommission":
        return (
            f"node {document['node_id']}: decommissioning; {document['replicas']} replica(s) "
            "to move (watch `raftlog cluster status`)"
        )
    if command == "transfer-controller":
        return f"controller: node {document['leader']} leads (term {document['term']})"
    if command == "partition":
        return (
            f"{document['topic']}/{document['partition']}: node {document['leader']} leads "
            f"(term {document['term']})"
        )
    if command == "segment":
        header = (
            f"{document['topic']}/{document['partition']}  leader {document['leader'] or '-'}  "
            f"term {document['term'] or '-'}  high watermark {document['high_watermark']}  "
            f"log start {document['log_start_offset']}"
        )
        return header + "\n\n" + str(table([_segment_row(s) for s in document["segments"]]))
    cluster = document["cluster"]
    lines = [
        f"cluster {cluster['cluster_id']}  controller leader {cluster['controller_leader'] or '-'}"
        f"  seen from node {cluster['node_id']}  ready {str(cluster['ready']).lower()}",
        "",
        str(
            table(
                [
                    {
                        "node": node["node_id"],
                        "kafka": node["kafka"],
                        "internal": node["internal"],
                        "link": "self" if node["this_node"] else _link(node["connected"]),
                        "replicas": node["replicas"],
                        "state": "decommissioning" if node["decommissioning"] else "active",
                    }
                    for node in cluster["nodes"]
                ]
            )
        ),
        "",
    ]
    rows = []
    for partition in document["partitions"]:
        for segment in partition["segments"]:
            row = {"partition": f"{partition['topic']}/{partition['partition']}"}
            row.update(_segment_row(segment))
            rows.append(row)
    lines.append(str(table(rows)))
    return "\n".join(lines)
