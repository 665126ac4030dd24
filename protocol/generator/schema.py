"""The Kafka JSON message schemas, parsed into a small model the emitter walks.

Kept free of code generation so that tests can build hypothesis strategies from the same
model (which fields exist in which version, which are nullable or tagged).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

FIXED_SIZES: dict[str, int] = {
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "uint16": 2,
    "uint32": 4,
    "float64": 8,
    "bool": 1,
    "uuid": 16,
}
VARIABLE_TYPES = frozenset({"string", "bytes", "records"})
PRIMITIVE_TYPES = frozenset(FIXED_SIZES) | VARIABLE_TYPES


@dataclass(frozen=True)
class Versions:
    """An inclusive version range; `high` None means open-ended ("3+")."""

    low: int
    high: int | None

    @classmethod
    def parse(cls, spec: str | None) -> Versions:
        if spec is None or spec.strip() == "none":
            return NO_VERSIONS
        spec = spec.strip()
        if spec.endswith("+"):
            return cls(int(spec[:-1]), None)
        if "-" in spec:
            low, high = spec.split("-")
            return cls(int(low), int(high))
        return cls(int(spec), int(spec))

    def __contains__(self, version: int) -> bool:
        return self.low <= version and (self.high is None or version <= self.high)

    @property
    def empty(self) -> bool:
        return self.high is not None and self.high < self.low


NO_VERSIONS = Versions(0, -1)


def snake_case(name: str) -> str:
    """`ThrottleTimeMs` -> `throttle_time_ms`; `KRaftVersion` -> `kraft_version`."""
    name = name.replace("KRaft", "Kraft")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    if keyword.iskeyword(snake) or snake in {"unknown_tagged_fields"}:
        snake += "_"
    return snake


@dataclass(eq=False)
class Field:
    name: str
    type: str
    versions: Versions
    nullable_versions: Versions
    tagged_versions: Versions
    tag: int | None
    default: str | None
    ignorable: bool
    map_key: bool
    flexible_versions: Versions | None
    about: str
    struct: Struct | None = None
    """The struct this field holds (alone or as array elements), once resolved."""

    @property
    def attr(self) -> str:
        return snake_case(self.name)

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.element_type not in PRIMITIVE_TYPES

    def tagged_in(self, version: int) -> bool:
        return self.tag is not None and version in self.tagged_versions


@dataclass(eq=False)
class Struct:
    name: str
    fields: list[Field]
    versions: Versions


@dataclass(eq=False)
class Message:
    """One schema file: a request, response, header or data message."""

    file_name: str
    name: str
    kind: str
    api_key: int | None
    valid_versions: Versions
    flexible_versions: Versions
    deprecated_versions: Versions
    latest_version_unstable: bool
    root: Struct
    structs: dict[str, Struct] = field(default_factory=dict)
    """Every named struct of the message, inline or common, by name (in definition order)."""

    def versions(self) -> range:
        high = self.valid_versions.high
        assert high is not None, f"{self.name}: validVersions must be bounded"
        return range(self.valid_versions.low, high + 1)

    def flexible(self, version: int) -> bool:
        return version in self.flexible_versions


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def _parse_field(raw: dict, structs: dict[str, Struct], pending: list[Field]) -> Field:
    tag = raw.get("tag")
    parsed = Field(
        name=raw["name"],
        type=raw["type"],
        versions=Versions.parse(raw.get("versions")),
        nullable_versions=Versions.parse(raw.get("nullableVersions")),
        tagged_versions=Versions.parse(raw.get("taggedVersions")),
        tag=int(tag) if tag is not None else None,
        default=None if "default" not in raw else str(raw["default"]),
        ignorable=bool(raw.get("ignorable", False)),
        map_key=bool(raw.get("mapKey", False)),
        flexible_versions=(
            Versions.parse(raw["flexibleVersions"]) if "flexibleVersions" in raw else None
        ),
        about=" ".join(str(raw.get("about", "")).split()),
    )
    if "fields" in raw:
        struct_name = parsed.element_type
        children = [_parse_field(child, structs, pending) for child in raw["fields"]]
        if struct_name in structs:
            raise ValueError(f"struct {struct_name} defined twice")
        structs[struct_name] = Struct(struct_name, children, parsed.versions)
    if parsed.is_struct:
        pending.append(parsed)
    return parsed


def parse_message(path: Path) -> Message:
    raw = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    structs: dict[str, Struct] = {}
    pending: list[Field] = []
    for common in raw.get("commonStructs", []):
        fields = [_parse_field(child, structs, pending) for child in common["fields"]]
        structs[common["name"]] = Struct(
            common["name"], fields, Versions.parse(common.get("versions", "0+"))
        )
    top = [_parse_field(child, structs, pending) for child in raw["fields"]]
    for item in pending:
        if item.element_type not in structs:
            raise ValueError(f"{path.name}: field {item.name} has unknown type {item.type}")
        item.struct = structs[item.element_type]
    root = Struct(raw["name"], top, Versions.parse(raw["validVersions"]))
    return Message(
        file_name=path.name,
        name=raw["name"],
        kind=raw["type"],
        api_key=raw.get("apiKey"),
        valid_versions=Versions.parse(raw["validVersions"]),
        flexible_versions=Versions.parse(raw["flexibleVersions"]),
        deprecated_versions=Versions.parse(raw.get("deprecatedVersions")),
        latest_version_unstable=bool(raw.get("latestVersionUnstable", False)),
        root=root,
        structs=structs,
    )


def load_messages(schema_dir: Path) -> list[Message]:
    files = sorted(schema_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no *.json schemas in {schema_dir}")
    return [parse_message(path) for path in files]
