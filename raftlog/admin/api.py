"""The admin HTTP API's routes: JSON documents, health, metrics and the console.

| route | answer |
|---|---|
| `GET /healthz` | 200 while the process runs |
| `GET /readyz` | 200 once joined, caught up with the controller log and serving Kafka; else 503 |
| `GET /metrics` | Prometheus text exposition (this node's registry) |
| `GET /v1/cluster` | cluster id, controller leader, nodes |
| `GET /v1/topics` | every topic with its partition count, replication factor and configs |
| `GET /v1/topics/{topic}/partitions` | each partition's segment chain |
| `GET /v1/groups` | consumer groups this node coordinates, with lag |
| `POST /v1/partitions/{topic}/{partition}/transfer-leader?target=N` | leadership to N |
| `POST /v1/controller/transfer-leader?target=N` | the controller group's leadership to N |
| `POST /v1/nodes/{id}/decommission` | drain node {id}: its replicas move, then it is unlisted |
| `GET /` | the console (static HTML + JS polling the JSON routes) |

Decommissioning answers once the controller recorded it (400 if the node is unknown or too
few nodes would remain, 503 if no controller leader answers); the moves follow, and
`GET /v1/cluster` shows each node's `decommissioning` flag and replica count until the
node holds nothing and leaves the list.

Reads are GET and HEAD; the transfers are the other two POSTs (`&timeout_ms=T`, default
10000, at most 60000): any node takes them and forwards them to the group's leader; 200
once N leads. A JSON error document says what went wrong (400 bad request or target,
404 unknown topic or partition, 409 Raft refused or abandoned the transfer, 503 no
leader reachable within the timeout, 504 the target did not take over in time).
"""

from __future__ import annotations

import json
import urllib.parse
from importlib import resources
from typing import Any

import attrs

from raftlog.admin.http_server import HttpRequest, HttpResponse
from raftlog.admin.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from raftlog.admin.metrics import NodeMetrics
from raftlog.admin.view import NodeView
from raftlog.controller.metadata import MetadataError
from raftlog.controller.service import ControllerUnavailable
from raftlog.node.leadership import TransferError

TRANSFER_ROUTE = "/v1/partitions/{topic}/{partition}/transfer-leader"
CONTROLLER_TRANSFER_ROUTE = "/v1/controller/transfer-leader"
DECOMMISSION_ROUTE = "/v1/nodes/{id}/decommission"

CONSOLE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
}


def _json(status: int, document: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(document, indent=1).encode() + b"\n")


def _error(status: int, message: str) -> HttpResponse:
    return _json(status, {"error": message})


def _console_file(name: str) -> bytes:
    return resources.files("raftlog.admin").joinpath("console", name).read_bytes()


@attrs.define(eq=False)
class AdminApi:
    view: NodeView
    metrics: NodeMetrics
    _console: dict[str, bytes] = attrs.field(factory=dict)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        split = urllib.parse.urlsplit(request.target)
        if request.method == "POST":
            return await self._post(split.path, urllib.parse.parse_qs(split.query))
        if request.method not in ("GET", "HEAD"):
            return attrs.evolve(
                _error(405, f"{request.method} is not served"),
                headers=(("allow", "GET, HEAD, POST"),),
            )
        return self.route(split.path)

    async def _post(self, path: str, query: dict[str, list[str]]) -> HttpResponse:
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        if len(parts) == 4 and parts[:2] == ["v1", "nodes"] and parts[3] == "decommission":
            return await self._decommission(parts[2])
        controller = parts == ["v1", "controller", "transfer-leader"]
        partition_route = (
            len(parts) == 5 and parts[:2] == ["v1", "partitions"] and parts[4] == "transfer-leader"
        )
        if not controller and not partition_route:
            return attrs.evolve(
                _error(
                    405,
                    f"POST is served only on {TRANSFER_ROUTE}, {CONTROLLER_TRANSFER_ROUTE} "
                    f"and {DECOMMISSION_ROUTE}",
                ),
                headers=(("allow", "GET, HEAD"),),
            )
        route = CONTROLLER_TRANSFER_ROUTE if controller else TRANSFER_ROUTE
        try:
            partition = 0 if controller else int(parts[3])
            target = int(query["target"][0])
            timeout_s = int(query.get("timeout_ms", ["10000"])[0]) / 1000
        except (KeyError, ValueError, IndexError):
            return _error(400, f"usage: POST {route}?target=N[&timeout_ms=T]")
        node = self.view.node
        try:
            if controller:
                answer = await node.transfer_controller(target, timeout_s)
            else:
                answer = await node.transfer_leader(parts[2], partition, target, timeout_s)
        except TransferError as error:
            return _error(error.status, str(error))
        return _json(200, answer)

    async def _decommission(self, node_id: str) -> HttpResponse:
        try:
            target = int(node_id)
        except ValueError:
            return _error(400, f"usage: POST {DECOMMISSION_ROUTE} with a numeric id")
        try:
            answer = await self.view.node.decommission(target)
        except ControllerUnavailable as error:
            return _error(503, str(error))
        except MetadataError as error:
            return _error(400, str(error))
        return _json(200, answer)

    def route(self, path: str) -> HttpResponse:
        if path == "/healthz":
            return _json(200, {"status": "ok"})
        if path == "/readyz":
            ready = self.view.ready
            return _json(200 if ready else 503, {"ready": ready})
        if path == "/metrics":
            return HttpResponse(200, self.metrics.exposition(), METRICS_CONTENT_TYPE)
        if path in CONSOLE_FILES:
            name, content_type = CONSOLE_FILES[path]
            if name not in self._console:
                self._console[name] = _console_file(name)
            return HttpResponse(200, self._console[name], content_type)
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        if parts[:1] != ["v1"]:
            return _error(404, f"no route {path}")
        return self._v1(parts[1:], path)

    def _v1(self, parts: list[str], path: str) -> HttpResponse:
        if parts == ["cluster"]:
            return _json(200, self.view.cluster())
        if parts == ["topics"]:
            return _json(200, {"topics": self.view.topics()})
        if len(parts) == 3 and parts[0] == "topics" and parts[2] == "partitions":
            partitions = self.view.partitions(parts[1])
            if partitions is None:
                return _error(404, f"no topic {parts[1]!r}")
            return _json(200, {"topic": parts[1], "partitions": partitions})
        if parts == ["groups"]:
            return _json(200, {"groups": self.view.groups()})
        return _error(404, f"no route {path}")
