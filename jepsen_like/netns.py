"""Real network faults: one Linux network namespace per node, joined by a bridge.

Layout of one run (every name carries the harness's pid, so parallel runs never clash)::

    root namespace:  bridge rlb<pid>  10.77.K.254/24   <- clients connect from here
                     veth rlv<pid>n<i> (enslaved to the bridge)
    namespace rl<pid>-n<i>:  eth0 10.77.K.i/24, lo    <- node i listens here

Partitions are iptables DROP rules inside the namespaces, matching the other nodes'
addresses only: clients (10.77.K.254) still reach every node, as in Jepsen, which is
what lets a deposed leader be caught serving stale or uncommitted data. Packet loss is
an iptables ``statistic`` rule; delay needs ``tc netem`` (the ``sch_netem`` kernel
module) and is refused with a clear error when the kernel lacks it.

Everything created is removed by ``close()``, which the runner calls from ``finally``
and from ``atexit``; ``close()`` is idempotent and keeps going past individual errors.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

import attrs

from jepsen_like.network import (
    ADMIN_PORT,
    INTERNAL_PORT,
    KAFKA_PORT,
    NetworkError,
    NodeEndpoints,
)

SUBNET_PREFIX = "10.77"
BRIDGE_HOST = 254
COMMAND_TIMEOUT_S = 10.0


def namespaces_available() -> bool:
    """Root, with ``ip`` and ``iptables`` on PATH: the only preconditions we can test cheaply."""
    return (
        os.geteuid() == 0
        and shutil.which("ip") is not None
        and shutil.which("iptables") is not None
    )


def _run(arguments: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(arguments), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(arguments)} failed: {result.stderr.strip()}")
    return result


def _used_subnets() -> set[str]:
    routes = _run(["ip", "-4", "route", "show"]).stdout
    used = set()
    for line in routes.splitlines():
        first = line.split(" ", 1)[0]
        if first.startswith(SUBNET_PREFIX + "."):
            used.add(first)
    return used


def _pick_subnet(pid: int) -> ipaddress.IPv4Network:
    """A 10.77.K.0/24 no route uses yet, starting from one derived from the pid."""
    used = _used_subnets()
    for step in range(250):
        third = (pid + step) % 250 + 1
        network = ipaddress.IPv4Network(f"{SUBNET_PREFIX}.{third}.0/24")
        if str(network) not in used:
            return network
    raise NetworkError(f"every {SUBNET_PREFIX}.K.0/24 subnet is in use")


@attrs.define(eq=False)
class NamespaceNetwork:
    """Owns the namespaces, veths and bridge of one run; see the module docstring."""

    node_ids: tuple[int, ...]
    pid: int = attrs.field(factory=os.getpid)
    subnet: ipaddress.IPv4Network | None = None
    mechanism: str = "netns+iptables"
    _created_namespaces: list[str] = attrs.field(factory=list)
    _bridge_created: bool = False
    _closed: bool = False
    _netem_nodes: set[int] = attrs.field(factory=set)
    _netem_refusal: str | None = None

    # -- names -------------------------------------------------------------------------

    @property
    def bridge(self) -> str:
        return f"rlb{self.pid}"

    def namespace(self, node_id: int) -> str:
        return f"rl{self.pid}-n{node_id}"

    def _veth(self, node_id: int) -> str:
        name = f"rlv{self.pid}n{node_id}"
        if len(name) > 15:
            raise NetworkError(f"interface name {name!r} is longer than Linux allows (15)")
        return name

    def address(self, node_id: int) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + node_id)

    # -- life cycle --------------------------------------------------------------------

    def open(self) -> None:
        if not namespaces_available():
            raise NetworkError("network namespaces need root with ip and iptables on PATH")
        self.subnet = _pick_subnet(self.pid)
        gateway = f"{self.subnet.network_address + BRIDGE_HOST}/24"
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._bridge_created = True
        _run(["ip", "addr", "add", gateway, "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for node_id in self.node_ids:
            namespace = self.namespace(node_id)
            veth = self._veth(node_id)
            _run(["ip", "netns", "add", namespace])
            self._created_namespaces.append(namespace)
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                  "netns", namespace])  # fmt: skip
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            inside = ["ip", "netns", "exec", namespace]
            _run([*inside, "ip", "addr", "add", f"{self.address(node_id)}/24", "dev", "eth0"])
            _run([*inside, "ip", "link", "set", "eth0", "up"])
            _run([*inside, "ip", "link", "set", "lo", "up"])
        self._netem_refusal = self._probe_netem()

    def _probe_netem(self) -> str | None:
        """Why ``tc netem`` cannot run here (None: it can): containers often lack sch_netem."""
        inside = ["ip", "netns", "exec", self.namespace(self.node_ids[0]), "tc", "qdisc"]
        added = _run([*inside, "add", "dev", "eth0", "root", "netem", "delay", "1ms"], check=False)
        if added.returncode != 0:
            return f"tc netem refused ({added.stderr.strip()}); is sch_netem loaded?"
        _run([*inside, "del", "dev", "eth0", "root"], check=False)
        return None

    def unsupported(self, kind: str) -> str | None:
        if kind == "delay" and self._netem_refusal is not None:
            return f"the delay nemesis needs tc netem: {self._netem_refusal}"
        return None

    def close(self) -> list[str]:
        """Remove everything; returns the errors met (cleanup never stops half-way)."""
        if self._closed:
            return []
        self._closed = True
        errors = []
        for node_id in self.node_ids:
            # Deleting our end removes the pair at once; a namespace may outlive its
            # deletion (the kernel frees it when its last reference goes), its veth with it.
            if _run(["ip", "link", "show", self._veth(node_id)], check=False).returncode == 0:
                result = _run(["ip", "link", "del", self._veth(node_id)], check=False)
                if result.returncode != 0:
                    errors.append(f"ip link del {self._veth(node_id)}: {result.stderr.strip()}")
        for namespace in reversed(self._created_namespaces):
            # Deleting a namespace also deletes its end of the veth pair, and so the pair.
            result = _run(["ip", "netns", "del", namespace], check=False)
            if result.returncode != 0:
                errors.append(f"ip netns del {namespace}: {result.stderr.strip()}")
        if self._bridge_created:
            result = _run(["ip", "link", "del", self.bridge], check=False)
            if result.returncode != 0:
                errors.append(f"ip link del {self.bridge}: {result.stderr.strip()}")
        return errors

    # -- what nodes and clients see ----------------------------------------------------

    def endpoints(self, node_id: int) -> NodeEndpoints:
        peers = ",".join(f"{n}@{self.address(n)}:{INTERNAL_PORT}" for n in self.node_ids)
        return NodeEndpoints(
            kafka_addr=f"{self.address(node_id)}:{KAFKA_PORT}",
            peers=peers,
            admin_addr=f"{self.address(node_id)}:{ADMIN_PORT}",
            command_prefix=("ip", "netns", "exec", self.namespace(node_id)),
        )

    # -- faults ------------------------------------------------------------------------

    def _iptables(self, node_id: int, *rule: str) -> None:
        _run(["ip", "netns", "exec", self.namespace(node_id), "iptables", *rule])

    def cut(self, links: Iterable[tuple[int, int]]) -> None:
        """Drop every packet between each pair of nodes, both ways, on both ends."""
        for a, b in links:
            for here, there in ((a, b), (b, a)):
                peer = self.address(there)
                self._iptables(here, "-A", "INPUT", "-s", peer, "-j", "DROP")
                self._iptables(here, "-A", "OUTPUT", "-d", peer, "-j", "DROP")

    def lose(self, node_ids: Iterable[int], probability: float) -> None:
        """Drop a random share of the packets a node sends to the other nodes."""
        for node_id in node_ids:
            for other in self.node_ids:
                if other != node_id:
                    self._iptables(
                        node_id, "-A", "OUTPUT", "-d", self.address(other),
                        "-m", "statistic", "--mode", "random",
                        "--probability", f"{probability:.3f}", "-j", "DROP",
                    )  # fmt: skip

    def mute(self, node_ids: Iterable[int]) -> None:
        """DROP what leaves the node from its Kafka port: requests arrive and are carried
        out (batches appended and replicated), their answers never reach the client."""
        for node_id in node_ids:
            self._iptables(
                node_id, "-A", "OUTPUT", "-p", "tcp", "--sport", str(KAFKA_PORT), "-j", "DROP"
            )

    def delay(self, node_ids: Iterable[int], delay_ms: int, jitter_ms: int) -> None:
        for node_id in node_ids:
            result = _run(
                ["ip", "netns", "exec", self.namespace(node_id), "tc", "qdisc", "add", "dev",
                 "eth0", "root", "netem", "delay", f"{delay_ms}ms", f"{jitter_ms}ms"],
                check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise NetworkError(
                    "the delay nemesis needs tc netem (kernel module sch_netem), which this "
                    f"kernel refused: {result.stderr.strip()}"
                )
            self._netem_nodes.add(node_id)

    def heal(self) -> None:
        """Flush every rule and qdisc we added: the network is whole again."""
        for node_id in self.node_ids:
            self._iptables(node_id, "-F", "INPUT")
            self._iptables(node_id, "-F", "OUTPUT")
        for node_id in sorted(self._netem_nodes):
            _run(
                ["ip", "netns", "exec", self.namespace(node_id), "tc", "qdisc", "del", "dev",
                 "eth0", "root"],
                check=False,
            )  # fmt: skip
        self._netem_nodes.clear()
