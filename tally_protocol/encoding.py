"""Canonical binary encoding and framing.

Rules this module keeps:

* Every message starts with ``version (u8) | msg_type (u8)``; a reader
  refuses any other version (no negotiation, no downgrade).
* Fields have one fixed order and one encoding: big-endian integers of fixed
  width, byte strings and UTF-8 text with a u16 length prefix.  There is
  exactly one encoding of each value, so encoded bytes can be hashed and
  authenticated without a separate canonicalisation step.
* Trailing bytes are an error.  Every failure is ``MalformedMessage``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import struct
from typing import TypeVar

from .codes import MessageType
from .errors import MalformedMessage, UnsupportedVersion
from .principal import Principal

PROTOCOL_VERSION = 1
F = TypeVar("F", bound=enum.IntFlag)
MAX_BLOB = 0xFFFF

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Writer:
    """Appends fields in canonical form."""

    __slots__ = ("_parts",)

    def __init__(self, msg_type: MessageType | None = None) -> None:
        self._parts: list[bytes] = []
        if msg_type is not None:
            self._parts.append(bytes((PROTOCOL_VERSION, msg_type)))

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def raw(self, value: bytes) -> Writer:
        """Fixed-length bytes; the reader must know the length."""
        self._parts.append(value)
        return self

    def blob(self, value: bytes) -> Writer:
        if len(value) > MAX_BLOB:
            raise MalformedMessage("field too long")
        self._parts.append(_U16.pack(len(value)))
        self._parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8"))

    def principal(self, value: Principal) -> Writer:
        return self.text(str(value))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads fields written by ``Writer``; any short read or excess is malformed."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, msg_type: MessageType | None = None) -> None:
        if type(data) is not bytes:  # the exact type first (the verifier's path): no copy
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise MalformedMessage("message must be bytes")
            data = bytes(data)
        self._data = data
        self._pos = 0
        if msg_type is not None:  # the version is judged before the type, as the fields are read
            if not data:
                raise MalformedMessage("message truncated")
            if data[0] != PROTOCOL_VERSION:
                raise UnsupportedVersion(version=data[0])
            if len(data) < 2:
                raise MalformedMessage("message truncated")
            if data[1] != msg_type:
                raise MalformedMessage(f"expected {msg_type.name} message")
            self._pos = 2

    # Each field reads in place (no intermediate slices, few calls): the verifier parses several messages per
    # request.
    def _advance(self, n: int) -> int:
        """The current position, after checking that ``n`` bytes follow it and moving past them."""
        pos = self._pos
        end = pos + n
        if end > len(self._data):
            raise MalformedMessage("message truncated")
        self._pos = end
        return pos

    def u8(self) -> int:
        return self._data[self._advance(1)]

    def u32(self) -> int:
        return int(_U32.unpack_from(self._data, self._advance(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self._data, self._advance(8))[0])

    def raw(self, n: int) -> bytes:
        pos = self._advance(n)
        return self._data[pos:pos + n]

    def blob(self) -> bytes:
        data, pos = self._data, self._pos
        start = pos + 2
        if start > len(data):
            raise MalformedMessage("message truncated")
        end = start + ((data[pos] << 8) | data[pos + 1])
        if end > len(data):
            raise MalformedMessage("message truncated")
        self._pos = end
        return data[start:end]

    def text(self) -> str:
        try:
            return self.blob().decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedMessage("text field is not UTF-8") from e

    def principal(self) -> Principal:
        return Principal.parse(self.text())

    def flags(self, kind: type[F]) -> F:
        """A u32 flag set; unknown bits are refused (one encoding per value)."""
        value = self.u32()
        known = 0
        for member in kind:
            known |= int(member)
        if value & ~known:
            raise MalformedMessage(f"unknown {kind.__name__} bits")
        return kind(value)

    def end(self) -> None:
        if self._pos != len(self._data):
            raise MalformedMessage("trailing bytes after message")


def peek_unverified_type(data: bytes) -> MessageType:
    """The claimed type of a framed message, before any check of its contents."""
    if len(data) < 2:
        raise MalformedMessage("message truncated")
    if data[0] != PROTOCOL_VERSION:
        raise UnsupportedVersion(version=data[0])
    try:
        return MessageType(data[1])
    except ValueError as e:
        raise MalformedMessage("unknown message type") from e


def b64encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5), for headers and JSON."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict inverse of ``b64encode``: rejects padding, other alphabets and non-canonical tails."""
    if not isinstance(text, str):
        raise MalformedMessage("expected a base64url string")
    try:
        raw = text.encode("ascii")
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise MalformedMessage("invalid base64url") from e
    if b64encode(data) != text:
        raise MalformedMessage("non-canonical base64url")
    return data
