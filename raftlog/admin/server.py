"""Starting a node's admin endpoint: the one function `Node.run` calls.

Kept apart from the node so the node's start-up reads as one line, and so the admin
parts (view, metrics, routes, HTTP server) are wired together in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from raftlog.admin.api import AdminApi
from raftlog.admin.http_server import HttpServer
from raftlog.admin.view import NodeView

if TYPE_CHECKING:
    from raftlog.node.node import Node


async def start_admin(node: Node, nursery: trio.Nursery) -> int | None:
    """Serve the admin API in `nursery` if `admin_addr` is set; returns the bound port."""
    address = node.config.admin_addr
    if address is None:
        return None
    view = NodeView(node)
    node.metrics.attach(view)
    server = HttpServer(AdminApi(view, node.metrics))
    port: int = await nursery.start(server.serve, address.host, address.port)
    return port
