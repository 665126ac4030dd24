"""The `raftlog` command line: one sub-command per operator task."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from pathlib import Path

import trio

from raftlog import __version__, allocator, cli_cluster, cli_groups, cli_records, cli_topics, logs
from raftlog.cli_client import CommandError, client
from raftlog.config import ConfigError, NodeConfig, resolve
from raftlog.node.node import Node
from raftlog.testing import LocalCluster, NodeFailedToStart

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_FAILED = 1
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file of settings")
    parser.add_argument("--data-dir", dest="data_dir", help="where data lives (./raftlog-data)")
    parser.add_argument("--kafka-addr", dest="kafka_addr", help="Kafka listener HOST:PORT")
    parser.add_argument(
        "--advertised-kafka-addr", dest="advertised_kafka_addr", help="HOST:PORT told to clients"
    )
    parser.add_argument(
        "--admin-addr",
        dest="admin_addr",
        help="admin HTTP API, metrics and console HOST:PORT (127.0.0.1:9644; '' turns it off)",
    )
    parser.add_argument("--node-id", dest="node_id", help="this node's id (1)")
    parser.add_argument("--peers", help="cluster members as ID@HOST:PORT,...")
    parser.add_argument(
        "--internal-addr",
        dest="internal_addr",
        help="node-to-node HOST:PORT when not given by --peers (127.0.0.1:9093)",
    )
    parser.add_argument(
        "--seeds", help="join through these members' internal HOST:PORT,... (not in --peers)"
    )
    parser.add_argument(
        "--join-timeout-ms",
        dest="join_timeout_ms",
        help="give up joining when no seed or remembered member answers this long (60000)",
    )
    parser.add_argument("--fsync", help="always (default) or relaxed")
    parser.add_argument(
        "--auto-create-topics", dest="auto_create_topics", help="true or false (false)"
    )
    parser.add_argument("--log-format", dest="log_format", help="text or json")
    parser.add_argument(
        "--segment-bytes", dest="segment_bytes", help="seal a segment at this size (256 MiB)"
    )
    parser.add_argument(
        "--cached-tail-bytes",
        dest="cached_tail_bytes",
        help="keep each log's newest bytes in the page cache, drop older ones (32 MiB; -1 all)",
    )
    parser.add_argument(
        "--retention-bytes", dest="retention_bytes", help="per partition default (-1: no limit)"
    )
    parser.add_argument("--retention-ms", dest="retention_ms", help="default (7 days)")
    parser.add_argument("--retention-check-ms", dest="retention_check_ms", help="how often (30000)")
    parser.add_argument(
        "--node-dead-timeout-ms",
        dest="node_dead_timeout_ms",
        help="re-replicate a node's segments once it is unreachable this long (300000)",
    )
    parser.add_argument(
        "--internal-tls-cert", dest="internal_tls_cert", help="PEM cert for node-to-node TLS"
    )
    parser.add_argument("--internal-tls-key", dest="internal_tls_key", help="its PEM key")
    parser.add_argument(
        "--internal-tls-ca", dest="internal_tls_ca", help="PEM CA that peers' certs chain to"
    )
    parser.add_argument(
        "--controller-nodes",
        dest="controller_nodes",
        help="how many members (lowest ids) vote in the controller group (3)",
    )
    parser.add_argument(
        "--compaction-check-ms",
        dest="compaction_check_ms",
        help="how often compacted topics are checked for dirty segments (15000)",
    )
    parser.add_argument(
        "--leader-balance-interval-ms",
        dest="leader_balance_interval_ms",
        help="how often leaders hand partitions back to their preferred replicas (10000; 0 off)",
    )


FLAG_SETTINGS = (
    "data_dir",
    "kafka_addr",
    "advertised_kafka_addr",
    "admin_addr",
    "node_id",
    "peers",
    "internal_addr",
    "seeds",
    "join_timeout_ms",
    "fsync",
    "auto_create_topics",
    "log_format",
    "segment_bytes",
    "cached_tail_bytes",
    "retention_bytes",
    "retention_ms",
    "retention_check_ms",
    "node_dead_timeout_ms",
    "controller_nodes",
    "internal_tls_cert",
    "internal_tls_key",
    "internal_tls_ca",
    "compaction_check_ms",
    "leader_balance_interval_ms",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftlog", description="A Raft-replicated event log that speaks Kafka."
    )
    parser.add_argument("--version", action="version", version=f"raftlog {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run a node (no configuration needed)")
    _add_node_flags(serve)
    group = commands.add_parser(
        "group", help="consumer groups: list, describe, reset-offsets, delete"
    )
    group_commands = group.add_subparsers(dest="group_command", metavar="SUBCOMMAND")
    group_list = group_commands.add_parser("list", help="every group and its state")
    group_describe = group_commands.add_parser(
        "describe", help="members, assignments, committed offsets and lag of a group"
    )
    group_describe.add_argument("group_id", metavar="GROUP")
    group_reset = group_commands.add_parser(
        "reset-offsets",
        help="move an inactive group's committed offsets of a topic (dry run unless --execute)",
    )
    group_reset.add_argument("group_id", metavar="GROUP")
    group_reset.add_argument("--topic", required=True, help="the topic whose offsets move")
    target = group_reset.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--to-earliest", action="store_const", dest="target", const="earliest",
        help="each partition's log start offset",
    )  # fmt: skip
    target.add_argument(
        "--to-latest", action="store_const", dest="target", const="latest",
        help="each partition's end offset (skip everything there now)",
    )  # fmt: skip
    target.add_argument(
        "--to-offset", type=int, metavar="N", help="this offset, clamped to each partition's log"
    )
    group_reset.add_argument(
        "--execute", action="store_true", help="commit the new offsets (default: show them)"
    )
    group_delete = group_commands.add_parser(
        "delete", help="delete an empty group and its committed offsets"
    )
    group_delete.add_argument("group_id", metavar="GROUP")
    for sub in (group_list, group_describe, group_reset, group_delete):
        sub.add_argument("--bootstrap", default="127.0.0.1:9092", help="a node's Kafka address")
        sub.add_argument("--format", choices=("text", "json"), default="text")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=("text", "json"), default="text")
    bootstrap = argparse.ArgumentParser(add_help=False)
    bootstrap.add_argument(
        "--bootstrap", default=DEFAULT_BOOTSTRAP, help=f"node Kafka addresses ({DEFAULT_BOOTSTRAP})"
    )
    kafka_common = argparse.ArgumentParser(add_help=False, parents=[bootstrap, output])
    cli_topics.add_parsers(commands, kafka_common)
    cli_records.add_parsers(commands, kafka_common, bootstrap)
    cli_cluster.add_parsers(commands, output)
    dev = commands.add_parser("dev", help="local development helpers")
    dev_commands = dev.add_subparsers(dest="dev_command", metavar="SUBCOMMAND")
    cluster = dev_commands.add_parser(
        "cluster", help="run a local cluster of real node processes until Ctrl-C"
    )
    cluster.add_argument("--nodes", type=int, default=3, help="how many nodes (3)")
    cluster.add_argument("--data-dir", type=Path, default=Path("raftlog-dev-cluster"))
    cluster.add_argument(
        "--base-port",
        type=int,
        default=9092,
        help="Kafka ports from here, internal +100, admin HTTP +200",
    )
    config = commands.add_parser("config", help="configuration commands")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    show = config_commands.add_parser("show", help="print the effective configuration")
    _add_node_flags(show)
    show.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _resolve(arguments: argparse.Namespace) -> NodeConfig:
    flags = {name: getattr(arguments, name) for name in FLAG_SETTINGS}
    return resolve(config_file=arguments.config, flags=flags)


async def _serve(config: NodeConfig) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            node = Node(config)
            nursery.start_soon(node.run)
            async for signal_number in signals:
                logs.event("stopping", signal=signal.Signals(signal_number).name)
                nursery.cancel_scope.cancel()
                break
    logs.event("stopped")


def _group(arguments: argparse.Namespace) -> int:
    try:
        if arguments.group_command == "list":
            document: object = cli_groups.list_groups(arguments.bootstrap)
        elif arguments.group_command == "describe":
            document = cli_groups.describe_group(arguments.bootstrap, arguments.group_id)
        elif arguments.group_command == "reset-offsets":
            document = cli_groups.reset_offsets(
                arguments.bootstrap,
                arguments.group_id,
                arguments.topic,
                "offset" if arguments.to_offset is not None else arguments.target,
                arguments.to_offset,
                arguments.execute,
            )
        else:
            document = cli_groups.delete_group(arguments.bootstrap, arguments.group_id)
    except (ConnectionError, cli_groups.GroupCommandError) as error:
        print(f"raftlog: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(cli_groups.render(document, arguments.format))
    return EXIT_OK


def _kafka_command(arguments: argparse.Namespace) -> int:
    """topic, produce and consume: talk Kafka to the nodes, print a table or JSON."""
    try:
        with client(arguments.bootstrap) as connected:
            if arguments.command == "topic":
                document = cli_topics.run(connected, arguments)
            elif arguments.command == "produce":
                document = cli_records.produce(connected, arguments, sys.stdin.buffer)
            else:
                cli_records.consume(connected, arguments, sys.stdout.buffer)
                return EXIT_OK
    except (ConnectionError, CommandError) as error:
        print(f"raftlog: {error}", file=sys.stderr)
        return EXIT_FAILED
    if arguments.format == "json":
        print(json.dumps(document, indent=2))
    elif arguments.command == "topic":
        print(cli_topics.render_text(arguments.topic_command, document, cli_groups.table))
    else:
        print(cli_records.render_text(document))
    return EXIT_OK


def _admin_command(arguments: argparse.Namespace) -> int:
    """cluster, segment and partition commands: a node's admin HTTP API."""
    try:
        document = cli_cluster.run(arguments)
    except (ConnectionError, CommandError) as error:
        print(f"raftlog: {error}", file=sys.stderr)
        return EXIT_FAILED
    if arguments.format == "json":
        print(json.dumps(document, indent=2))
    else:
        print(cli_cluster.render_text(cli_cluster.view_name(arguments), document, cli_groups.table))
    return EXIT_OK


def _dev_cluster(nodes: int, data_dir: Path, base_port: int) -> int:
    if not 1 <= nodes <= 9:
        print("raftlog: --nodes must be 1-9", file=sys.stderr)
        return EXIT_USAGE
    cluster = LocalCluster(data_dir, nodes=nodes, base_port=base_port)
    try:
        cluster.start()
    except NodeFailedToStart as error:
        print(f"raftlog: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"bootstrap: {cluster.bootstrap}", flush=True)
    admins = ", ".join(f"{member.admin_url}/" for member in cluster.members)
    print(f"console: {admins}", flush=True)
    print(f"logs: {data_dir}/node*.log; Ctrl-C stops every node", flush=True)
    # Block the stop signals only now: the node processes must not inherit the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        codes = cluster.stop()
    print(f"stopped: {codes}")
    return EXIT_OK if all(code == 0 for code in codes.values()) else EXIT_FAILED


def _config_show(config: NodeConfig, output_format: str) -> None:
    shown = config.as_text_dict()
    if output_format == "json":
        print(json.dumps(shown, indent=2))
        return
    width = max(len(key) for key in shown)
    for key, value in shown.items():
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if (
        arguments.command is None
        or (arguments.command == "config" and arguments.config_command is None)
        or (arguments.command == "dev" and arguments.dev_command is None)
        or (arguments.command == "group" and arguments.group_command is None)
        or (arguments.command == "topic" and arguments.topic_command is None)
        or (arguments.command == "cluster" and arguments.cluster_command is None)
        or (arguments.command == "segment" and arguments.segment_command is None)
        or (arguments.command == "partition" and arguments.partition_command is None)
    ):
        parser.print_help()
        return EXIT_USAGE
    if arguments.command == "group":
        return _group(arguments)
    if arguments.command in ("topic", "produce", "consume"):
        return _kafka_command(arguments)
    if arguments.command in ("cluster", "segment", "partition"):
        return _admin_command(arguments)
    if arguments.command == "dev":
        return _dev_cluster(arguments.nodes, arguments.data_dir, arguments.base_port)
    try:
        config = _resolve(arguments)
    except ConfigError as error:
        print(f"raftlog: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if arguments.command == "config":
        _config_show(config, arguments.format)
        return EXIT_OK
    logs.configure(config.log_format, config.log_level)
    logs.event("allocator_tuned", applied=allocator.tune_for_node())
    try:
        trio.run(_serve, config)
    except Exception as error:
        # One readable line first; the traceback after it, because a crash must be diagnosable
        # from the log alone.
        message = str(error) or type(error).__name__
        print(f"raftlog: {message}", file=sys.stderr)
        traceback.print_exception(error, file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
