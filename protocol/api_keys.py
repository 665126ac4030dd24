"""Kafka API keys and the registry: api key -> request/response classes and versions.

The table itself is generated from the schemas (`messages/generated/registry.py`); this
module turns it into `ApiSpec` values and loads a message module only when first asked,
so that importing the codec does not import all 176 message modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import attrs

from raftlog.protocol.messages.generated.registry import API_TABLE, ApiKey

if TYPE_CHECKING:
    from raftlog.protocol.messages._runtime import Message

__all__ = [
    "API_SPECS",
    "ApiKey",
    "ApiSpec",
    "message_class",
    "request_header_version",
    "response_header_version",
]

_GENERATED = "raftlog.protocol.messages.generated"


def message_class(module: str, name: str) -> type[Message]:
    """Import a generated message class by module and class name."""
    return getattr(importlib.import_module(f"{_GENERATED}.{module}"), name)  # type: ignore[no-any-return]


@attrs.frozen
class ApiSpec:
    """What the schemas say about one API."""

    api_key: int
    name: str
    """Kafka's name without the Request/Response suffix, e.g. "Produce"."""
    request_module: str
    request_class_name: str
    response_module: str
    response_class_name: str
    min_version: int
    max_version: int
    flexible_min_version: int | None
    """First flexible (KIP-482) version; every later version, even unknown ones, is too."""
    deprecated_versions: tuple[int, int] | None
    latest_version_unstable: bool

    @property
    def request_class(self) -> type[Message]:
        return message_class(self.request_module, self.request_class_name)

    @property
    def response_class(self) -> type[Message]:
        return message_class(self.response_module, self.response_class_name)

    def is_flexible(self, version: int) -> bool:
        return self.flexible_min_version is not None and version >= self.flexible_min_version

    def request_header_version(self, version: int) -> int:
        """Header v2 iff the API version is flexible; v0 only for ControlledShutdown v0."""
        if self.api_key == ApiKey.CONTROLLED_SHUTDOWN and version == 0:
            return 0
        return 2 if self.is_flexible(version) else 1

    def response_header_version(self, version: int) -> int:
        """Header v1 iff flexible, except ApiVersions: always v0 so any client can parse it."""
        if self.api_key == ApiKey.API_VERSIONS:
            return 0
        return 1 if self.is_flexible(version) else 0


API_SPECS: dict[int, ApiSpec] = {
    row[0]: ApiSpec(
        api_key=row[0],
        name=row[1],
        request_module=row[2],
        request_class_name=row[3],
        response_module=row[4],
        response_class_name=row[5],
        min_version=row[6],
        max_version=row[7],
        flexible_min_version=row[8],
        deprecated_versions=row[9],
        latest_version_unstable=row[10],
    )
    for row in API_TABLE
}


def request_header_version(api_key: int, version: int) -> int:
    return API_SPECS[api_key].request_header_version(version)


def response_header_version(api_key: int, version: int) -> int:
    return API_SPECS[api_key].response_header_version(version)
