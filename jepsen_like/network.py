"""How the harness places nodes on a network it can break.

Two mechanisms share one interface: network namespaces with iptables (``netns.py``),
used when running as root with ``ip`` and ``iptables``, and a fault-injecting TCP proxy
between nodes (``proxy.py``) everywhere else. The report records which one ran, because
they do not break the same things: the proxy only cuts node-to-node connections on
localhost, while namespaces drop packets, so TCP itself sees the fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import attrs

KAFKA_PORT = 9092
"""Inside a namespace every node has its own address, so every node uses the same ports."""
INTERNAL_PORT = 9093
ADMIN_PORT = 9644


class NetworkError(RuntimeError):
    """The network could not be set up, changed or torn down; the message says which step."""


@attrs.frozen
class NodeEndpoints:
    kafka_addr: str
    """HOST:PORT the node listens on for clients, and advertises (clients can reach it)."""
    peers: str
    """The node's ``--peers`` value: every member's internal address as *this* node sees it."""
    admin_addr: str = ""
    """HOST:PORT of the node's admin HTTP API, reachable from the harness (the ``transfer``
    nemesis posts there); empty: the node's default."""
    command_prefix: tuple[str, ...] = ()
    """Prepended to the node's command line (``ip netns exec NAME``); exec'd, so the pid
    the harness holds is the node's own and signals reach it directly."""


class Network(Protocol):
    mechanism: str
    """Named in run.json and in the report."""

    def open(self) -> None: ...

    def close(self) -> list[str]: ...

    def endpoints(self, node_id: int) -> NodeEndpoints: ...

    def unsupported(self, kind: str) -> str | None:
        """Why a nemesis kind cannot run on this network (None: it can); asked once open."""
        ...

    def cut(self, links: Iterable[tuple[int, int]]) -> None: ...

    def lose(self, node_ids: Iterable[int], probability: float) -> None: ...

    def mute(self, node_ids: Iterable[int]) -> None:
        """Drop every answer the nodes send to clients, while their requests still arrive."""
        ...

    def delay(self, node_ids: Iterable[int], delay_ms: int, jitter_ms: int) -> None: ...

    def heal(self) -> None: ...


def choose_network(node_ids: tuple[int, ...], prefer: str = "auto") -> Network:
    """``auto``: namespaces when available, else the proxy; ``netns`` / ``proxy`` force one."""
    from jepsen_like.netns import NamespaceNetwork, namespaces_available
    from jepsen_like.proxy import ProxyNetwork

    if prefer not in ("auto", "netns", "proxy"):
        raise NetworkError(f"unknown network mechanism {prefer!r}: auto, netns or proxy")
    if prefer == "netns" or (prefer == "auto" and namespaces_available()):
        return NamespaceNetwork(node_ids)
    return ProxyNetwork(node_ids)
