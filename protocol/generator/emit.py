"""Turn a parsed schema `Message` into the source of one Python module.

Each (struct, version) gets a decode and an encode function specialised for that
version's wire layout; versions whose layouts are byte-for-byte the same share one
function (dedupe by generated text). Runs of consecutive fixed-size fields are read and
written with a single precompiled `struct.Struct`, which is most of the speed.
"""

from __future__ import annotations

from raftlog.protocol.generator.schema import (
    FIXED_SIZES,
    Field,
    Message,
    Struct,
    snake_case,
)

STRUCT_CODES = {
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint16": "H",
    "uint32": "I",
    "float64": "d",
    "bool": "?",
}
RUN_TYPES = frozenset(STRUCT_CODES)
PY_TYPES = {
    "int8": "int",
    "int16": "int",
    "int32": "int",
    "int64": "int",
    "uint16": "int",
    "uint32": "int",
    "float64": "float",
    "bool": "bool",
    "uuid": "UUID",
    "string": "str",
    "bytes": "bytes",
    "records": "RecordsValue",
}
FN = "__FN__"


def module_name(message: Message) -> str:
    return snake_case(message.name)


def default_expr(field: Field) -> str:
    """Python source for a field's default value (a fresh object for mutable ones)."""
    raw = field.default
    if field.is_array:
        return "None" if raw == "null" else "[]"
    if field.is_struct:
        return "None" if raw == "null" else f"{field.element_type}()"
    kind = field.type
    if kind in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
        return str(int(raw, 0)) if raw else "0"
    if kind == "float64":
        return repr(float(raw)) if raw else "0.0"
    if kind == "bool":
        return "True" if raw and raw.lower() == "true" else "False"
    if kind == "string":
        return "None" if raw == "null" else repr(raw or "")
    if kind == "bytes":
        return "None" if raw == "null" else "b''"
    if kind == "records":
        return "None"
    if kind == "uuid":
        return "_ZERO_UUID"
    raise ValueError(f"no default for type {kind}")


def differs_expr(field: Field, value: str) -> str:
    """Source of a test "value is not the field's default" (what Kafka encodes or rejects)."""
    default = default_expr(field)
    if field.is_struct and not field.is_array and default != "None":
        return f"{value} != _DEFAULT_{field.element_type}"
    if default == "None":
        return f"{value} is not None"
    if default == "[]":
        return f"({value} is None or len({value}) > 0)"
    if default == "b''":
        return f"({value} is None or len({value}) > 0)"
    return f"{value} != {default}"


def type_hint(field: Field) -> str:
    element = field.element_type if field.is_struct else PY_TYPES[field.element_type]
    hint = f"list[{element}]" if field.is_array else element
    can_be_null = not field.nullable_versions.empty or default_expr(field) == "None"
    return f"{hint} | None" if can_be_null else hint


class ModuleEmitter:
    def __init__(self, message: Message, kafka_commit: str) -> None:
        self.message = message
        self.kafka_commit = kafka_commit
        self.functions: list[str] = []
        self.by_text: dict[str, str] = {}
        self.cache: dict[tuple[str, str, int], str] = {}
        self.counters: dict[str, int] = {}
        self.formats: dict[str, str] = {}
        self.defaults_needed: set[str] = set()
        self.has_tags = not message.flexible_versions.empty
        self.min_sizes: dict[str, int] = {}

    # -- helpers -------------------------------------------------------------------------

    def fmt_var(self, codes: str) -> str:
        if codes not in self.formats:
            self.formats[codes] = "_S_" + codes.replace("?", "o")
        return self.formats[codes]

    def register(self, kind: str, struct_name: str, body: list[str], min_size: int = 0) -> str:
        text = "\n".join(body)
        if text in self.by_text:
            return self.by_text[text]
        number = self.counters.get(f"{kind}{struct_name}", 0)
        self.counters[f"{kind}{struct_name}"] = number + 1
        name = f"_{kind}_{struct_name}_{number}"
        self.by_text[text] = name
        self.functions.append(text.replace(FN, name))
        self.min_sizes[name] = min_size
        return name

    def present(self, struct: Struct, version: int) -> list[Field]:
        return [f for f in struct.fields if version in f.versions]

    def compact(self, field: Field, version: int) -> bool:
        if not self.message.flexible(version):
            return False
        return field.flexible_versions is None or version in field.flexible_versions

    # -- decode --------------------------------------------------------------------------

    def decoder(self, struct: Struct, version: int) -> str:
        key = ("d", struct.name, version)
        if key in self.cache:
            return self.cache[key]
        flexible = self.message.flexible(version)
        fields = self.present(struct, version)
        regular = [f for f in fields if not f.tagged_in(version)]
        tagged = sorted((f for f in fields if f.tagged_in(version)), key=lambda f: f.tag or 0)
        body = [f"def {FN}(buf, pos):"]
        min_size = 0
        index = 0
        while index < len(regular):
            field = regular[index]
            if field.type in RUN_TYPES:
                run = [field]
                while (
                    index + len(run) < len(regular) and regular[index + len(run)].type in RUN_TYPES
                ):
                    run.append(regular[index + len(run)])
                codes = "".join(STRUCT_CODES[f.type] for f in run)
                size = sum(FIXED_SIZES[f.type] for f in run)
                names = ", ".join(f"f_{f.attr}" for f in run) + ("," if len(run) == 1 else "")
                what = f"{struct.name}.{run[0].attr}"
                body += [
                    f"    if pos + {size} > len(buf):",
                    f"        raise _truncated({what!r}, pos, {size}, buf)",
                    f"    {names} = {self.fmt_var(codes)}.unpack_from(buf, pos)",
                    f"    pos += {size}",
                ]
                min_size += size
                index += len(run)
                continue
            lines, size = self.decode_value(struct, field, version, f"f_{field.attr}", "buf", "pos")
            body += ["    " + line for line in lines]
            min_size += size
            index += 1
        if flexible:
            min_size += 1
            body += self.decode_tags(struct, tagged, version)
        args = []
        for field in struct.fields:
            if field in regular or field in tagged:
                args.append(f"f_{field.attr}")
            else:
                args.append(default_expr(field))
        if self.has_tags:
            args.append("unknown_" if flexible else "None")
        body.append(f"    return {struct.name}({', '.join(args)}), pos")
        name = self.register("d", struct.name, body, min_size)
        self.cache[key] = name
        return name

    def decode_value(
        self, struct: Struct, field: Field, version: int, target: str, buf: str, pos: str
    ) -> tuple[list[str], int]:
        """Lines that decode one (non-run) field into `target`; and its minimum size."""
        compact = self.compact(field, version)
        nullable = version in field.nullable_versions
        what = repr(f"{struct.name}.{field.attr}")
        kind = field.element_type
        if field.is_array:
            reader = "_read_compact_array_length" if compact else "_read_array_length"
            element_min = self.element_min_size(field, version, compact)
            lines = [f"n_, {pos} = {reader}({buf}, {pos}, {what}, {element_min})"]
            lines += ["if n_ < 0:"]
            if nullable:
                lines += [f"    {target} = None"]
            else:
                lines += [f"    raise _DecodeError({what} + ' is null, not allowed here')"]
            lines += ["else:"]
            if field.is_struct:
                assert field.struct is not None
                child = self.decoder(field.struct, version)
                lines += [
                    f"    {target} = []",
                    f"    append_ = {target}.append",
                    "    for _ in range(n_):",
                    f"        item_, {pos} = {child}({buf}, {pos})",
                    "        append_(item_)",
                ]
            elif kind in RUN_TYPES:
                size = FIXED_SIZES[kind]
                code = STRUCT_CODES[kind]
                lines += [
                    f"    if {pos} + n_ * {size} > len({buf}):",
                    f"        raise _truncated({what}, {pos}, n_ * {size}, {buf})",
                    f"    {target} = list(_unpack_from(f'>{{n_}}{code}', {buf}, {pos}))",
                    f"    {pos} += n_ * {size}",
                ]
            else:
                element_reader = self.scalar_reader(kind, compact, False)
                lines += [
                    f"    {target} = []",
                    f"    append_ = {target}.append",
                    "    for _ in range(n_):",
                    f"        item_, {pos} = {element_reader}({buf}, {pos}, {what})",
                    "        append_(item_)",
                ]
            return lines, 1 if compact else 4
        if field.is_struct:
            assert field.struct is not None
            child = self.decoder(field.struct, version)
            if nullable:
                return [
                    f"marker_, {pos} = _read_int8({buf}, {pos})",
                    "if marker_ < 0:",
                    f"    {target} = None",
                    "else:",
                    f"    {target}, {pos} = {child}({buf}, {pos})",
                ], 1
            return [f"{target}, {pos} = {child}({buf}, {pos})"], self.min_sizes[child]
        if kind in RUN_TYPES:
            size = FIXED_SIZES[kind]
            return [
                f"if {pos} + {size} > len({buf}):",
                f"    raise _truncated({what}, {pos}, {size}, {buf})",
                f"{target}, = {self.fmt_var(STRUCT_CODES[kind])}.unpack_from({buf}, {pos})",
                f"{pos} += {size}",
            ], size
        reader = self.scalar_reader(kind, compact, nullable)
        lines = [f"{target}, {pos} = {reader}({buf}, {pos}, {what})"]
        if kind == "records" and not nullable:
            lines += [
                f"if {target} is None:",
                f"    raise _DecodeError({what} + ' is null, not allowed here')",
            ]
        sizes = {"uuid": 16, "string": 2, "bytes": 4, "records": 4}
        return lines, 1 if compact and kind != "uuid" else sizes[kind]

    @staticmethod
    def scalar_reader(kind: str, compact: bool, nullable: bool) -> str:
        if kind == "uuid":
            return "_read_uuid"
        if kind == "records":
            return "_read_compact_records" if compact else "_read_records"
        prefix = "_read_compact_" if compact else "_read_"
        return f"{prefix}{'nullable_' if nullable else ''}{kind}"

    def element_min_size(self, field: Field, version: int, compact: bool) -> int:
        kind = field.element_type
        if field.is_struct:
            assert field.struct is not None
            return self.min_sizes[self.decoder(field.struct, version)]
        if kind in FIXED_SIZES:
            return FIXED_SIZES[kind]
        return 1 if compact else {"string": 2, "bytes": 4, "records": 4}[kind]

    def decode_tags(self, struct: Struct, tagged: list[Field], version: int) -> list[str]:
        what = repr(f"{struct.name} tagged fields")
        body = [f"    f_{f.attr} = {default_expr(f)}" for f in tagged]
        body += [
            "    unknown_ = None",
            f"    ntags_, pos = _read_uvarint(buf, pos, {what})",
            "    if ntags_:",
            f"        _check_tag_count(buf, pos, ntags_, {what})",
            "        last_ = -1",
            "        for _ in range(ntags_):",
            f"            tag_, size_, pos = _read_tag_header(buf, pos, last_, {what})",
            "            last_ = tag_",
        ]
        keyword = "if"
        for field in tagged:
            lines, _ = self.decode_value(struct, field, version, f"f_{field.attr}", "sub_", "p_")
            body += [
                f"            {keyword} tag_ == {field.tag}:",
                "                sub_ = buf[:pos + size_]",
                "                p_ = pos",
            ]
            body += ["                " + line for line in lines]
            body += [f"                _check_consumed(pos, p_, size_, {what})"]
            keyword = "elif"
        indent = "            "
        if tagged:
            body += [f"{indent}else:"]
            indent += "    "
        body += [
            f"{indent}if unknown_ is None:",
            f"{indent}    unknown_ = {{}}",
            f"{indent}unknown_[tag_] = bytes(buf[pos:pos + size_])",
            "            pos += size_",
        ]
        return body

    # -- encode --------------------------------------------------------------------------

    def encoder(self, struct: Struct, version: int) -> str:
        key = ("e", struct.name, version)
        if key in self.cache:
            return self.cache[key]
        flexible = self.message.flexible(version)
        fields = self.present(struct, version)
        regular = [f for f in fields if not f.tagged_in(version)]
        tagged = sorted((f for f in fields if f.tagged_in(version)), key=lambda f: f.tag or 0)
        body = [f"def {FN}(o, out):"]
        for field in struct.fields:
            if field in fields or field.ignorable or field.versions.empty:
                continue
            if field.is_struct and not field.is_array and default_expr(field) != "None":
                self.defaults_needed.add(field.element_type)
            body += [
                f"    if {differs_expr(field, 'o.' + field.attr)}:",
                f"        raise _EncodeError({struct.name + '.' + field.attr!r} + "
                f"' has a non-default value that this version cannot carry')",
            ]
        if self.has_tags and not flexible:
            body += [
                "    if o.unknown_tagged_fields:",
                f"        raise _EncodeError('{struct.name}: this version has no tagged fields')",
            ]
        index = 0
        while index < len(regular):
            field = regular[index]
            if field.type in RUN_TYPES:
                run = [field]
                while (
                    index + len(run) < len(regular) and regular[index + len(run)].type in RUN_TYPES
                ):
                    run.append(regular[index + len(run)])
                codes = "".join(STRUCT_CODES[f.type] for f in run)
                values = ", ".join(f"o.{f.attr}" for f in run)
                body.append(f"    out += {self.fmt_var(codes)}.pack({values})")
                index += len(run)
                continue
            body += [
                "    " + line
                for line in self.encode_value(struct, field, version, f"o.{field.attr}", "out")
            ]
            index += 1
        if flexible:
            body += self.encode_tags(struct, tagged, version)
        if len(body) == 1:
            body.append("    pass")
        name = self.register("e", struct.name, body)
        self.cache[key] = name
        return name

    def encode_value(
        self, struct: Struct, field: Field, version: int, value: str, out: str
    ) -> list[str]:
        compact = self.compact(field, version)
        nullable = version in field.nullable_versions
        what = repr(f"{struct.name}.{field.attr}")
        kind = field.element_type
        null_error = f"raise _EncodeError({what} + ' is null, not allowed in this version')"
        if field.is_array:
            lines = [f"v_ = {value}", "if v_ is None:"]
            if nullable:
                lines.append(
                    f"    {out}.append(0)" if compact else f"    {out} += b'\\xff\\xff\\xff\\xff'"
                )
            else:
                lines.append(f"    {null_error}")
            lines.append("else:")
            if compact:
                lines.append(f"    _write_uvarint({out}, len(v_) + 1)")
            else:
                lines.append(f"    {out} += _S_i.pack(len(v_))")
                self.fmt_var("i")
            if field.is_struct:
                assert field.struct is not None
                child = self.encoder(field.struct, version)
                lines += ["    for item_ in v_:", f"        {child}(item_, {out})"]
            elif kind in RUN_TYPES:
                lines += [f"    {out} += _pack(f'>{{len(v_)}}{STRUCT_CODES[kind]}', *v_)"]
            else:
                writer = self.scalar_writer(kind, compact, False)
                lines += ["    for item_ in v_:", f"        {writer}({out}, item_, {what})"]
            return lines
        if field.is_struct:
            assert field.struct is not None
            child = self.encoder(field.struct, version)
            if nullable:
                return [
                    f"if {value} is None:",
                    f"    {out} += b'\\xff'",
                    "else:",
                    f"    {out}.append(1)",
                    f"    {child}({value}, {out})",
                ]
            return [f"if {value} is None:", f"    {null_error}", f"{child}({value}, {out})"]
        if kind in RUN_TYPES:
            return [f"{out} += {self.fmt_var(STRUCT_CODES[kind])}.pack({value})"]
        if kind == "uuid":
            return [f"{out} += {value}.bytes"]
        if kind == "records" and not nullable:
            return [
                f"if {value} is None:",
                f"    {null_error}",
                f"{self.scalar_writer(kind, compact, nullable)}({out}, {value}, {what})",
            ]
        return [f"{self.scalar_writer(kind, compact, nullable)}({out}, {value}, {what})"]

    @staticmethod
    def scalar_writer(kind: str, compact: bool, nullable: bool) -> str:
        if kind == "uuid":
            return "_write_uuid"
        if kind == "records":
            return "_write_compact_records" if compact else "_write_records"
        prefix = "_write_compact_" if compact else "_write_"
        return f"{prefix}{'nullable_' if nullable else ''}{kind}"

    def encode_tags(self, struct: Struct, tagged: list[Field], version: int) -> list[str]:
        if not tagged:
            return [
                "    if o.unknown_tagged_fields:",
                "        _write_tagged_fields(out, o.unknown_tagged_fields)",
                "    else:",
                "        out.append(0)",
            ]
        body = ["    known_ = []"]
        for field in tagged:
            if field.is_struct and not field.is_array and default_expr(field) != "None":
                self.defaults_needed.add(field.element_type)
            body += [
                f"    if {differs_expr(field, 'o.' + field.attr)}:",
                "        sub_ = _Output()",
            ]
            body += [
                "        " + line
                for line in self.encode_value(struct, field, version, f"o.{field.attr}", "sub_")
            ]
            body += [f"        known_.append(({field.tag}, sub_.getvalue()))"]
        body += [
            "    if known_ or o.unknown_tagged_fields:",
            "        _write_tagged_fields(out, o.unknown_tagged_fields, known_)",
            "    else:",
            "        out.append(0)",
        ]
        return body

    # -- classes -------------------------------------------------------------------------

    def versions_text(self, field: Field) -> str:
        def spec(v: object) -> str:
            low, high = v.low, v.high  # type: ignore[attr-defined]
            if high is None:
                return f"{low}+"
            return f"{low}" if low == high else f"{low}-{high}"

        parts = [f"v{spec(field.versions)}"]
        if not field.nullable_versions.empty:
            parts.append(f"nullable {spec(field.nullable_versions)}")
        if field.tag is not None:
            parts.append(f"tag {field.tag}")
        if field.map_key:
            parts.append("map key")
        return ", ".join(parts)

    def class_source(self, struct: Struct, is_root: bool) -> list[str]:
        base = "_Message" if is_root else "_Struct"
        attrs = [f.attr for f in struct.fields] + (
            ["unknown_tagged_fields"] if self.has_tags else []
        )
        lines = [f"class {struct.name}({base}):"]
        doc = [
            f'    """{self.message.name} {"message" if is_root else "struct"} {struct.name}.',
            "",
        ]
        for field in struct.fields:
            about = field.about.replace("\\", "\\\\").replace('"""', "'''")
            doc.append(f"    {field.attr} ({self.versions_text(field)}): {about}")
        if self.has_tags:
            doc.append(
                "    unknown_tagged_fields: tags this codec does not know, kept as raw bytes."
            )
        doc.append('    """')
        lines += [*doc, ""]
        slot_text = ", ".join(repr(a) for a in attrs)
        lines.append(f"    __slots__ = ({slot_text}{',' if len(attrs) == 1 else ''})")
        if is_root:
            message = self.message
            flexible_min = (
                None if message.flexible_versions.empty else message.flexible_versions.low
            )
            lines += [
                f"    API_KEY = {message.api_key!r}",
                f"    KIND = {message.kind!r}",
                f"    VALID_VERSIONS = ({message.valid_versions.low}, "
                f"{message.valid_versions.high})",
                f"    FLEXIBLE_MIN_VERSION = {flexible_min!r}",
            ]
        # Every struct says which versions carry each field, so that a server can reset
        # what a negotiated version cannot carry (see Struct.fit_to_version).
        spans = ", ".join(
            f"{f.attr!r}: ({f.versions.low}, {f.versions.high!r})"
            for f in struct.fields
            if not f.versions.empty
        )
        lines.append(f"    FIELD_VERSIONS = {{{spans}}}")
        lines.append("")
        params = ["self"]
        assigns = []
        for field in struct.fields:
            default = default_expr(field)
            hint = type_hint(field)
            if default in ("[]",) or default.endswith("()"):
                params.append(f"{field.attr}: {hint} = _MISSING")
                assigns.append(
                    f"        self.{field.attr} = "
                    f"{default} if {field.attr} is _MISSING else {field.attr}"
                )
            else:
                params.append(f"{field.attr}: {hint} = {default}")
                assigns.append(f"        self.{field.attr} = {field.attr}")
        if self.has_tags:
            params.append("unknown_tagged_fields: dict[int, bytes] | None = None")
            assigns.append("        self.unknown_tagged_fields = unknown_tagged_fields or None")
        lines.append(f"    def __init__({', '.join(params)}) -> None:")
        lines += assigns or ["        pass"]
        return [*lines, "", ""]

    # -- module --------------------------------------------------------------------------

    def source(self) -> str:
        message = self.message
        decoders: list[str] = []
        encoders: list[str] = []
        for version in message.versions():
            decoders.append(self.decoder(message.root, version))
            encoders.append(self.encoder(message.root, version))
        out = [
            f'"""{message.name}: generated from `{message.file_name}`; do not edit.',
            "",
            "Generated by `python -m raftlog.protocol.generator` from the Apache Kafka message",
            f"schemas at apache/kafka commit {self.kafka_commit}",
            "(see ../shared/kafka-protocol/README.md). Edit the generator, not this file.",
            '"""',
            "",
            "# ruff: noqa",
            "from __future__ import annotations",
            "",
            "import struct as _struct_module",
            "from uuid import UUID",
            "",
            "from raftlog.protocol.errors import DecodeError as _DecodeError",
            "from raftlog.protocol.errors import EncodeError as _EncodeError",
            "from raftlog.protocol.messages._runtime import MISSING as _MISSING",
            "from raftlog.protocol.messages._runtime import Message as _Message",
            "from raftlog.protocol.messages._runtime import Struct as _Struct",
            "from raftlog.protocol.primitives import (",
        ]
        names = sorted(
            {
                "Output as _Output",
                "RecordsValue",
                "ZERO_UUID as _ZERO_UUID",
                "check_consumed as _check_consumed",
                "check_tag_count as _check_tag_count",
                "read_array_length as _read_array_length",
                "read_compact_array_length as _read_compact_array_length",
                "read_int8 as _read_int8",
                "read_tag_header as _read_tag_header",
                "read_uuid as _read_uuid",
                "read_uvarint as _read_uvarint",
                "read_records as _read_records",
                "read_compact_records as _read_compact_records",
                "truncated as _truncated",
                "write_records as _write_records",
                "write_compact_records as _write_compact_records",
                "write_tagged_fields as _write_tagged_fields",
                "write_uvarint as _write_uvarint",
                "write_uuid as _write_uuid",
            }
            | {
                f"{prefix}{compact}{null}{kind} as _{prefix}{compact}{null}{kind}"
                for prefix in ("read_", "write_")
                for compact in ("", "compact_")
                for null in ("", "nullable_")
                for kind in ("string", "bytes")
            }
        )
        out += [f"    {name}," for name in names] + [")", ""]
        structs = [s for s in message.structs.values()]
        all_names = [message.name] + [s.name for s in structs]
        out.append("__all__ = [" + ", ".join(repr(n) for n in all_names) + "]")
        out += [
            "",
            "_pack = _struct_module.pack",
            "_unpack_from = _struct_module.unpack_from",
            "",
            "",
        ]
        out += self.class_source(message.root, True)
        for struct in structs:
            out += self.class_source(struct, False)
        out += [
            f"{var} = _struct_module.Struct('>{codes}')"
            for codes, var in sorted(self.formats.items())
        ]
        out += ["", ""]
        for function in self.functions:
            out += [function, "", ""]
        out.append(f"{message.name}._decoders = ({', '.join(decoders)},)")
        out.append(f"{message.name}._encoders = ({', '.join(encoders)},)")
        for name in sorted(self.defaults_needed):
            out.append(f"_DEFAULT_{name} = {name}()")
        return "\n".join(out).rstrip() + "\n"


def render_module(message: Message, kafka_commit: str) -> str:
    return ModuleEmitter(message, kafka_commit).source()
