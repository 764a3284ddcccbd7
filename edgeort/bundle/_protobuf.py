"""Find ONNX external-data references without importing onnx.

A minimal protobuf wire-format walker: it descends only into the ModelProto fields that
can hold a TensorProto (graph initializers, sparse initializers, node attributes,
subgraphs, functions, training graphs) and returns each tensor's ``external_data``
entries. Everything else is skipped by length, so the walk reads little of a large
model. Malformed input raises ``MalformedProto``; nothing here can recurse without
bound or allocate more than ``MAX_STRING`` per read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ExternalRef", "MalformedProto", "external_refs"]

MAX_DEPTH = 64
MAX_STRING = 64 * 1024
MAX_REFS = 1_000_000
_CHUNK = 1 << 16

# message kind -> {field number: child message kind}
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNC, _TRAIN, _ENTRY = range(9)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAIN, 25: _FUNC},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNC: {7: _NODE},
    _TRAIN: {1: _GRAPH, 2: _GRAPH},
}
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14


class MalformedProto(ValueError):
    """The bytes are not a protobuf of the expected shape; ``offset`` says where."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class ExternalRef:
    """One tensor stored outside the model file."""

    tensor: str
    entries: tuple[tuple[str, str], ...]  # external_data key/value pairs, in file order
    location_external: bool  # data_location == EXTERNAL


class _Source:
    """Random access to a file through a small window; skipping costs no I/O."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.start, self.buf = 0, b""

    def _fill(self, pos: int) -> None:
        self.fh.seek(pos)
        self.start, self.buf = pos, self.fh.read(_CHUNK)

    def byte(self, pos: int) -> int:
        if not self.start <= pos < self.start + len(self.buf):
            self._fill(pos)
            if not self.buf:
                raise MalformedProto("unexpected end of file", pos)
        return self.buf[pos - self.start]

    def read(self, pos: int, n: int) -> bytes:
        if n > MAX_STRING:
            raise MalformedProto(f"string of {n} bytes is longer than {MAX_STRING}", pos)
        if not (self.start <= pos and pos + n <= self.start + len(self.buf)):
            self._fill(pos)
        data = self.buf[pos - self.start : pos - self.start + n]
        if len(data) != n:
            raise MalformedProto("unexpected end of file", pos)
        return data

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = 0
        for shift in range(0, 70, 7):
            if pos >= end:
                raise MalformedProto("truncated varint", pos)
            b = self.byte(pos)
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value, pos
        raise MalformedProto("varint longer than 10 bytes", pos)


def _fields(src: _Source, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field, wire_type, value_or_span_start, span_end) of one message."""
    pos = start
    while pos < end:
        key, pos = src.varint(pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise MalformedProto("field number 0", pos)
        if wire == 0:
            value, pos = src.varint(pos, end)
            yield field, wire, value, pos
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise MalformedProto("truncated fixed-width field", pos)
        elif wire == 2:
            length, pos = src.varint(pos, end)
            if length > end - pos:
                raise MalformedProto(f"field {field} runs past its message ({length} bytes)", pos)
            yield field, wire, pos, pos + length
            pos += length
        else:
            raise MalformedProto(f"unsupported wire type {wire} (field {field})", pos)


def _text(src: _Source, start: int, end: int) -> str:
    try:
        return src.read(start, end - start).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedProto("string is not UTF-8", start) from None


def _entry(src: _Source, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for field, wire, a, b in _fields(src, start, end):
        if wire == 2 and field in (1, 2):
            if field == 1:
                key = _text(src, a, b)
            else:
                value = _text(src, a, b)
    return key, value


def _tensor(src: _Source, start: int, end: int) -> ExternalRef | None:
    name, entries, external = "", [], False
    for field, wire, a, b in _fields(src, start, end):
        if field == _TENSOR_NAME and wire == 2:
            name = _text(src, a, b)
        elif field == _TENSOR_EXTERNAL and wire == 2:
            entries.append(_entry(src, a, b))
        elif field == _TENSOR_LOCATION and wire == 0:
            external = a == 1
    if not entries and not external:
        return None
    return ExternalRef(name, tuple(entries), external)


def _walk(
    src: _Source, kind: int, start: int, end: int, depth: int, out: list[ExternalRef]
) -> None:
    if depth > MAX_DEPTH:
        raise MalformedProto(f"messages nested deeper than {MAX_DEPTH}", start)
    children = _CHILDREN[kind]
    for field, wire, a, b in _fields(src, start, end):
        sub = children.get(field)
        if sub is None or wire != 2:
            continue
        if sub == _TENSOR:
            ref = _tensor(src, a, b)
            if ref is not None:
                out.append(ref)
                if len(out) > MAX_REFS:
                    raise MalformedProto(f"more than {MAX_REFS} external tensors", a)
        else:
            _walk(src, sub, a, b, depth + 1, out)


def external_refs(fh: BinaryIO, size: int) -> list[ExternalRef]:
    """Every external-data reference in the ONNX ModelProto read from ``fh``."""
    out: list[ExternalRef] = []
    _walk(_Source(fh, size), _MODEL, 0, size, 0, out)
    return out
