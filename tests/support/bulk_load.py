"""Loading many keys into fakeredis quickly.

fakeredis parses what one write sends in time quadratic in its size, and
with hiredis installed redis-py sends a whole pipeline or a long MSET as one
write; so bulk data goes in commands of a bounded size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

#: Keys per command: large enough to be fast, small enough for fakeredis's parser.
CHUNK = 1000


def _chunks(items: Iterable[Any]) -> Iterable[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def bulk_set(client: Any, records: Mapping[str, str | bytes]) -> None:
    for chunk in _chunks(records.items()):
        client.mset(dict(chunk))


def bulk_zadd(client: Any, key: str, members: Mapping[str, float]) -> None:
    for chunk in _chunks(members.items()):
        client.zadd(key, dict(chunk))
