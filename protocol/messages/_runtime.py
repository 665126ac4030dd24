"""Base classes shared by every generated message module (hand-written).

The generated modules hold only data classes and per-version encode/decode functions;
everything version-independent (dispatch, error context, equality, repr) lives here so
that it is written once and tested once.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Self

from raftlog.protocol.errors import DecodeError, EncodeError, ErrorCode
from raftlog.protocol.primitives import Output

__all__ = ["MISSING", "Message", "Struct"]


class _Missing:
    """Marks "argument not given" where None is itself a valid (null) value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_DECODE_FAILURES = (struct.error, IndexError, ValueError, OverflowError, TypeError)
_ENCODE_FAILURES = (struct.error, TypeError, AttributeError, ValueError, OverflowError)


def _short(value: object) -> str:
    if isinstance(value, memoryview):
        return f"<memoryview of {value.nbytes} bytes>"
    return repr(value)


class Struct:
    """A schema struct: plain `__slots__` attributes, compared field by field."""

    __slots__ = ()

    FIELD_VERSIONS: ClassVar[dict[str, tuple[int, int | None]]] = {}
    """Attribute -> (first version, last version or None): which versions carry it."""

    @classmethod
    def has_field(cls, attribute: str, version: int) -> bool:
        """Whether `version` of this message carries `attribute`."""
        span = cls.FIELD_VERSIONS.get(attribute)
        if span is None:
            return False
        low, high = span
        return low <= version and (high is None or version <= high)

    def fit_to_version(self, version: int) -> None:
        """Reset, recursively, every field `version` cannot carry to its default.

        A server builds one response for all versions; the encoder (rightly) refuses a
        non-default value the negotiated version has no room for, so the server calls
        this first instead of checking versions field by field.
        """
        fresh: Struct | None = None
        for name, (low, high) in self.FIELD_VERSIONS.items():
            value = getattr(self, name)
            if version < low or (high is not None and version > high):
                fresh = fresh if fresh is not None else type(self)()
                setattr(self, name, getattr(fresh, name))
            elif isinstance(value, Struct):
                value.fit_to_version(version)
            elif isinstance(value, list) and value and isinstance(value[0], Struct):
                for item in value:
                    item.fit_to_version(version)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={_short(getattr(self, name))}" for name in self.__slots__)
        return f"{type(self).__name__}({parts})"


class Message(Struct):
    """A top-level request, response, header or data message with per-version codecs."""

    __slots__ = ()

    API_KEY: ClassVar[int | None] = None
    KIND: ClassVar[str] = ""
    VALID_VERSIONS: ClassVar[tuple[int, int]] = (0, -1)
    FLEXIBLE_MIN_VERSION: ClassVar[int | None] = None
    _decoders: ClassVar[tuple[Any, ...]] = ()
    _encoders: ClassVar[tuple[Any, ...]] = ()

    @classmethod
    def is_flexible(cls, version: int) -> bool:
        return cls.FLEXIBLE_MIN_VERSION is not None and version >= cls.FLEXIBLE_MIN_VERSION

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, version: int, *, strict: bool = True
    ) -> Self:
        """Decode one message from `data`; `strict` also rejects trailing bytes.

        Large `records` fields come back as memoryview slices of `data`, so keep `data`
        alive (and unmodified) as long as the message is used.
        """
        buf = data if isinstance(data, memoryview) else memoryview(data)
        if buf.ndim != 1 or buf.format != "B":
            buf = buf.cast("B")
        message, pos = cls.decode_from(buf, 0, version)
        if strict and pos != len(buf):
            raise DecodeError(
                f"{cls.__name__} v{version}: {len(buf) - pos} trailing byte(s) after the message"
            )
        return message

    @classmethod
    def decode_from(cls, buf: memoryview, pos: int, version: int) -> tuple[Self, int]:
        """Decode from `buf` at `pos`; return the message and the position after it."""
        low, high = cls.VALID_VERSIONS
        if not low <= version <= high:
            raise DecodeError(
                f"{cls.__name__}: version {version} is outside {low}-{high}",
                ErrorCode.UNSUPPORTED_VERSION,
            )
        try:
            return cls._decoders[version - low](buf, pos)
        except DecodeError as error:
            raise DecodeError(f"{cls.__name__} v{version}: {error}", error.error_code) from None
        except RecursionError:
            raise DecodeError(f"{cls.__name__} v{version}: nesting too deep") from None
        except _DECODE_FAILURES as error:  # pragma: no cover - a generator bug, not input
            raise DecodeError(f"{cls.__name__} v{version}: {error!r}") from error

    def encode(self, version: int) -> bytes:
        out = Output()
        self.encode_into(out, version)
        return out.getvalue()

    def encode_into(self, out: bytearray, version: int) -> None:
        """Append the encoding to `out`; an `Output` keeps big records by reference."""
        low, high = self.VALID_VERSIONS
        if not low <= version <= high:
            raise EncodeError(
                f"{type(self).__name__}: version {version} is outside {low}-{high}",
                ErrorCode.UNSUPPORTED_VERSION,
            )
        try:
            self._encoders[version - low](self, out)
        except EncodeError as error:
            raise EncodeError(f"{type(self).__name__} v{version}: {error}") from None
        except _ENCODE_FAILURES as error:
            raise EncodeError(f"{type(self).__name__} v{version}: {error!r}") from error
