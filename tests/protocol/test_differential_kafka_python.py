"""Differential test against an independent codec: kafka-python 3's schema-driven one.

Our encoding of a random valid message must decode in kafka-python and re-encode there
to exactly the same bytes. Two implementations agreeing byte for byte on every served
API and version is far stronger evidence than our own round trip, which would pass if
encoder and decoder shared a misreading of the schema.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftlog.protocol.testing import message_strategy, messages, served_cases

pytestmark = pytest.mark.clients

kafka_protocol = pytest.importorskip("kafka.protocol")
api_message = pytest.importorskip("kafka.protocol.api_message")

SKIPPED = {
    # kafka-python cannot re-encode a decoded DeleteTopicsRequest (its `_header` is unset).
    "DeleteTopicsRequest",
}


def _their_classes() -> dict[str, Any]:
    for module in pkgutil.walk_packages(kafka_protocol.__path__, "kafka.protocol."):
        if ".old" not in module.name and "generate_stubs" not in module.name:
            importlib.import_module(module.name)
    found: dict[str, Any] = {}
    pending = list(api_message.ApiMessage.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "_class_version", 0) is None:
            found[cls.name] = cls
    return found


THEIRS = _their_classes()


@pytest.mark.parametrize(("name", "version"), served_cases())
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_kafka_python_reads_and_rewrites_our_bytes(
    name: str, version: int, data: st.DataObject
) -> None:
    if name in SKIPPED or name not in THEIRS or version > THEIRS[name].max_version:
        pytest.skip(f"kafka-python has no usable {name} v{version}")
    # kafka-python drops unknown tagged fields, so draw none.
    value = data.draw(message_strategy(messages()[name], version, unknown_tags=False))
    if name == "ApiVersionsResponse" and value.error_code != 0:
        # kafka-python reads an ApiVersions error as the v0 fallback response.
        value.error_code = 0
    ours = value.encode(version)
    theirs = THEIRS[name].decode(ours, version=version).encode()
    assert bytes(theirs) == ours
