"""Every generated message round-trips, and hostile bytes only ever raise DecodeError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftlog.protocol.errors import DecodeError
from raftlog.protocol.testing import message_class_of, message_strategy, messages, served_cases

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _roundtrip(name: str, version: int, value: object) -> bytes:
    message = messages()[name]
    cls = message_class_of(message, message.root)
    encoded = value.encode(version)  # type: ignore[attr-defined]
    decoded = cls.decode(encoded, version)
    assert decoded == value
    assert decoded.encode(version) == encoded
    return encoded  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "version"), served_cases())
@SETTINGS
@given(data=st.data())
def test_served_roundtrip(name: str, version: int, data: st.DataObject) -> None:
    value = data.draw(message_strategy(messages()[name], version))
    _roundtrip(name, version, value)


@pytest.mark.parametrize(("name", "version"), served_cases())
@SETTINGS
@given(data=st.data())
def test_served_truncation_and_mutation(name: str, version: int, data: st.DataObject) -> None:
    message = messages()[name]
    cls = message_class_of(message, message.root)
    encoded = data.draw(message_strategy(message, version)).encode(version)
    cut = data.draw(st.integers(0, max(len(encoded) - 1, 0)))
    if len(encoded):
        with pytest.raises(DecodeError):
            cls.decode(encoded[:cut], version)
    mutated = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        if mutated:
            index = data.draw(st.integers(0, len(mutated) - 1))
            mutated[index] = data.draw(
                st.sampled_from([0x00, 0x7F, 0x80, 0xFF, mutated[index] ^ 1])
            )
    try:
        result = cls.decode(bytes(mutated), version)
    except DecodeError as error:
        assert str(error)  # the message names what was being read
    else:
        assert isinstance(result, cls)  # a mutation may still be a valid message


def _all_cases() -> list[object]:
    cases = []
    for name, message in sorted(messages().items()):
        for version in message.versions():
            cases.append(pytest.param(name, version, id=f"{name}-v{version}"))
    return cases


@pytest.mark.parametrize(("name", "version"), _all_cases())
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_schema_roundtrips(name: str, version: int, data: st.DataObject) -> None:
    """Cheap smoke over all 186 schemas and every version, served or not."""
    value = data.draw(message_strategy(messages()[name], version))
    _roundtrip(name, version, value)


def test_default_objects_roundtrip_in_every_version() -> None:
    for name, message in messages().items():
        cls = message_class_of(message, message.root)
        for version in message.versions():
            value = cls()
            assert cls.decode(value.encode(version), version) == value, (name, version)
