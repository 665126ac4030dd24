"""Hypothesis strategies for every generated message (needs the `test` extra).

Shipped in the package so that the server's tests can draw random valid requests and
responses too; nothing at run time imports it. Strategies are derived from the parsed
JSON schemas (which fields a version carries, which are nullable or tagged), so every
API and version gets random valid objects without hand-written fixtures.
"""

from __future__ import annotations

import functools
import importlib
import string
from typing import Any

import pytest
from hypothesis import strategies as st

from raftlog.protocol.generator import default_schema_dir
from raftlog.protocol.generator.emit import module_name
from raftlog.protocol.generator.schema import Field, Message, Struct, load_messages

SERVED_VERSIONS: dict[str, tuple[int, int]] = {
    "ApiVersions": (0, 3),
    "Metadata": (0, 12),
    "Produce": (0, 10),
    "Fetch": (4, 12),
    "ListOffsets": (1, 7),
    "InitProducerId": (0, 4),
    "CreateTopics": (2, 7),
    "DeleteTopics": (0, 6),
    "OffsetForLeaderEpoch": (0, 4),
    "FindCoordinator": (0, 4),
    "JoinGroup": (0, 9),
    "SyncGroup": (0, 5),
    "Heartbeat": (0, 4),
    "LeaveGroup": (0, 5),
    "OffsetCommit": (0, 8),
    "OffsetFetch": (0, 8),
    "DescribeGroups": (0, 5),
    "ListGroups": (0, 4),
    "DeleteGroups": (0, 2),
    "OffsetDelete": (0, 0),
    "DescribeConfigs": (0, 4),
}
"""The set the server will serve (name -> inclusive version range)."""


@functools.cache
def messages() -> dict[str, Message]:
    return {message.name: message for message in load_messages(default_schema_dir())}


def message_class_of(message: Message, struct: Struct) -> type:
    module = importlib.import_module(f"raftlog.protocol.messages.generated.{module_name(message)}")
    return getattr(module, struct.name)  # type: ignore[no-any-return]


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(string.ascii_letters),
    max_size=12,
)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "float64": st.floats(allow_nan=False),
    "bool": st.booleans(),
    "uuid": st.uuids(),
    "string": _TEXT,
    "bytes": st.binary(max_size=16),
    "records": st.binary(max_size=40),
}


def _field_strategy(
    message: Message, field: Field, version: int, unknown_tags: bool, depth: int
) -> st.SearchStrategy[Any]:
    if field.is_struct:
        assert field.struct is not None
        element = struct_strategy(message, field.struct, version, unknown_tags, depth + 1)
    else:
        element = _SCALARS[field.element_type]
    value = st.lists(element, max_size=3 if depth < 3 else 1) if field.is_array else element
    if version in field.nullable_versions:
        value = st.none() | value
    return value


@functools.cache
def struct_strategy(
    message: Message, struct: Struct, version: int, unknown_tags: bool = True, depth: int = 0
) -> st.SearchStrategy[Any]:
    """Random valid instances of `struct` for `version`; absent fields keep defaults."""
    kwargs = {
        field.attr: _field_strategy(message, field, version, unknown_tags, depth)
        for field in struct.fields
        if version in field.versions
    }
    if message.flexible(version) and unknown_tags:
        known = {f.tag for f in struct.fields if f.tagged_in(version)}
        tags = st.integers(0, 2**31 - 1).filter(lambda tag: tag not in known)
        kwargs["unknown_tagged_fields"] = st.none() | st.dictionaries(
            tags, st.binary(max_size=6), max_size=2
        )
    return st.builds(message_class_of(message, struct), **kwargs)


def message_strategy(
    message: Message, version: int, unknown_tags: bool = True
) -> st.SearchStrategy[Any]:
    return struct_strategy(message, message.root, version, unknown_tags)


def served_cases() -> list[Any]:
    """(message name, version) for every request and response of the served set."""
    cases = []
    for api, (low, high) in SERVED_VERSIONS.items():
        for kind in ("Request", "Response"):
            for version in range(low, high + 1):
                cases.append(pytest.param(api + kind, version, id=f"{api}{kind}-v{version}"))
    return cases
