"""One module per Kafka API; `HANDLERS` maps each served API key to its module.

Each module opens with what it does and exposes `API_KEY`, `VERSIONS` (the inclusive range
this node advertises and serves) and `async def handle(broker, request) -> response`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULE_NAMES = (
    "api_versions",
    "create_topics",
    "delete_groups",
    "delete_topics",
    "describe_configs",
    "describe_groups",
    "fetch",
    "find_coordinator",
    "heartbeat",
    "incremental_alter_configs",
    "init_producer_id",
    "join_group",
    "leave_group",
    "list_groups",
    "list_offsets",
    "metadata",
    "offset_commit",
    "offset_delete",
    "offset_fetch",
    "offset_for_leader_epoch",
    "produce",
    "sync_group",
)

HANDLERS: dict[int, ModuleType] = {
    module.API_KEY: module
    for module in (importlib.import_module(f"{__name__}.{name}") for name in _MODULE_NAMES)
}

SUPPORTED_VERSIONS: dict[int, tuple[int, int]] = {
    api_key: module.VERSIONS for api_key, module in HANDLERS.items()
}
