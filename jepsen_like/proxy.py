"""The fallback network: a fault-injecting TCP proxy between every pair of nodes.

Used where network namespaces are not available (not root, no ``ip``). Every node
listens on 127.0.0.1; node *i* is told (through its own ``--peers``) that node *j* lives
at the proxy port for the directed link i->j, which forwards to j's real internal port.
A partition closes the links' live connections and refuses new ones until healed;
delay holds every chunk for the given time before forwarding it. Packet loss has no
meaning for a byte stream and is refused. Clients connect to the nodes directly.

The proxy runs its own trio loop in a daemon thread; the harness (synchronous) changes
the fault state under a lock and asks the loop to close the connections a cut covers.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterable

import attrs
import trio

from jepsen_like.network import NetworkError, NodeEndpoints
from raftlog.testing import free_port

CHUNK_BYTES = 65536
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0

Link = tuple[int, int]


@attrs.define(eq=False)
class ProxyNetwork:
    node_ids: tuple[int, ...]
    mechanism: str = "tcp-proxy"
    _kafka_ports: dict[int, int] = attrs.field(factory=dict)
    _admin_ports: dict[int, int] = attrs.field(factory=dict)
    _internal_ports: dict[int, int] = attrs.field(factory=dict)
    _proxy_ports: dict[Link, int] = attrs.field(factory=dict)
    _blocked: set[Link] = attrs.field(factory=set)
    _delay_s: dict[int, tuple[float, float]] = attrs.field(factory=dict)
    _live: dict[Link, set[trio.CancelScope]] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _thread: threading.Thread | None = None
    _token: trio.lowlevel.TrioToken | None = None
    _stop: trio.Event | None = None
    _ready: threading.Event = attrs.field(factory=threading.Event)
    _failure: BaseException | None = None
    _rng: random.Random = attrs.field(factory=lambda: random.Random(0))

    def _links(self) -> list[Link]:
        return [(a, b) for a in self.node_ids for b in self.node_ids if a != b]

    # -- life cycle --------------------------------------------------------------------

    def open(self) -> None:
        for node_id in self.node_ids:
            self._kafka_ports[node_id] = free_port()
            self._admin_ports[node_id] = free_port()
            self._internal_ports[node_id] = free_port()
        self._thread = threading.Thread(target=self._thread_main, name="chaos-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._failure is not None:
            raise NetworkError(f"the TCP proxy did not start: {self._failure!r}")

    def close(self) -> list[str]:
        if self._thread is None or self._token is None:
            return []
        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(self._stop_soon, trio_token=self._token)
        self._thread.join(timeout=10)
        self._thread = None
        return [] if self._failure is None else [f"proxy: {self._failure!r}"]

    def _stop_soon(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:
            self._failure = error
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for link in self._links():
                listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
                self._proxy_ports[link] = listeners[0].socket.getsockname()[1]
                self._live[link] = set()
                handler = _bind_handler(self._serve_link, link)
                nursery.start_soon(trio.serve_listeners, handler, listeners)
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    # -- forwarding --------------------------------------------------------------------

    async def _serve_link(self, link: Link, client: trio.SocketStream) -> None:
        with self._lock:
            blocked = link in self._blocked
        if blocked:
            await client.aclose()
            return
        scope = trio.CancelScope()
        self._live[link].add(scope)
        try:
            with scope:
                with trio.move_on_after(CONNECT_TIMEOUT_S) as connecting:
                    server = await trio.open_tcp_stream("127.0.0.1", self._internal_ports[link[1]])
                if connecting.cancelled_caught:
                    return
                async with server, client, trio.open_nursery() as pumps:
                    pumps.start_soon(self._pump, link, client, server, pumps.cancel_scope)
                    pumps.start_soon(self._pump, link, server, client, pumps.cancel_scope)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._live[link].discard(scope)
            await trio.aclose_forcefully(client)

    async def _pump(
        self,
        link: Link,
        source: trio.SocketStream,
        target: trio.SocketStream,
        both: trio.CancelScope,
    ) -> None:
        try:
            while chunk := await source.receive_some(CHUNK_BYTES):
                pause = self._pause_for(link)
                if pause:
                    await trio.sleep(pause)
                await target.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        both.cancel()

    def _pause_for(self, link: Link) -> float:
        with self._lock:
            delays = [self._delay_s[n] for n in link if n in self._delay_s]
        if not delays:
            return 0.0
        delay, jitter = max(delays)
        return max(0.0, delay + self._rng.uniform(-jitter, jitter))

    def _close_links(self, links: set[Link]) -> None:
        for link in links:
            for scope in list(self._live.get(link, ())):
                scope.cancel()

    # -- what nodes and clients see ----------------------------------------------------

    def endpoints(self, node_id: int) -> NodeEndpoints:
        entries = []
        for other in self.node_ids:
            port = (
                self._internal_ports[node_id]
                if other == node_id
                else self._proxy_ports[(node_id, other)]
            )
            entries.append(f"{other}@127.0.0.1:{port}")
        return NodeEndpoints(
            kafka_addr=f"127.0.0.1:{self._kafka_ports[node_id]}",
            peers=",".join(entries),
            admin_addr=f"127.0.0.1:{self._admin_ports[node_id]}",
        )

    # -- faults ------------------------------------------------------------------------

    def cut(self, links: Iterable[tuple[int, int]]) -> None:
        both = {(a, b) for a, b in links} | {(b, a) for a, b in links}
        with self._lock:
            self._blocked |= both
        assert self._token is not None
        trio.from_thread.run_sync(self._close_links, both, trio_token=self._token)

    def unsupported(self, kind: str) -> str | None:
        if kind == "loss":
            return (
                "packet loss needs network namespaces (root with ip and iptables); the TCP "
                "proxy carries a byte stream, where losing bytes means nothing"
            )
        if kind == "mute":
            return (
                "muting a node's answers to clients needs network namespaces (root with ip "
                "and iptables); the TCP proxy only sits between nodes"
            )
        return None

    def lose(self, node_ids: Iterable[int], probability: float) -> None:
        raise NetworkError(self.unsupported("loss") or "")

    def mute(self, node_ids: Iterable[int]) -> None:
        raise NetworkError(self.unsupported("mute") or "")

    def delay(self, node_ids: Iterable[int], delay_ms: int, jitter_ms: int) -> None:
        with self._lock:
            for node_id in node_ids:
                self._delay_s[node_id] = (delay_ms / 1000, jitter_ms / 1000)

    def heal(self) -> None:
        with self._lock:
            self._blocked.clear()
            self._delay_s.clear()


def _bind_handler(serve: object, link: Link) -> object:
    async def handler(stream: trio.SocketStream) -> None:
        await serve(link, stream)  # type: ignore[operator]

    return handler
