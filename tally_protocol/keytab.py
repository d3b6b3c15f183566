"""Keytab files: a service principal and all its key versions, as bytes.

Format: ``version u8 | KEYTAB u8 | principal | count u32 | (kvno u32 | key[32])*``.
Old versions stay so tickets issued before a rotation keep verifying.
The bytes are secret: adapters write them with mode 0600.
"""

from __future__ import annotations

from .codes import MessageType
from .encoding import Reader, Writer
from .errors import InvalidRequest, MalformedMessage
from .keys import KEY_SIZE, Key, Keyset
from .principal import Principal

MAX_ENTRIES = 1024


def dump_keytab(principal: Principal, keyset: Keyset) -> bytes:
    w = Writer(MessageType.KEYTAB).principal(principal).u32(len(keyset))
    for key in keyset:
        w.u32(key.kvno).raw(key.material)
    return w.getvalue()


def load_keytab(data: bytes) -> tuple[Principal, Keyset]:
    r = Reader(data, MessageType.KEYTAB)
    principal = r.principal()
    count = r.u32()
    if not 1 <= count <= MAX_ENTRIES:
        raise MalformedMessage("keytab entry count out of range")
    keys: list[Key] = []
    for _ in range(count):
        kvno = r.u32()
        keys.append(Key(r.raw(KEY_SIZE), kvno))
    r.end()
    try:
        return principal, Keyset(keys)
    except InvalidRequest as e:  # duplicate versions
        raise MalformedMessage("invalid keytab") from e
