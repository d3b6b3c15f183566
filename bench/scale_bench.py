"""Item 4: Redis memory per replay entry, and KDC latency as the principal database grows.

Memory: a fresh redis-server, the 256 shard markers seeded, then N claims
through ``RedisReplayCache.claim`` with ``ctime`` spread over the skew window
as steady traffic leaves the live entries (each a real member of its
shard's and ``ctime`` bucket's set); ``INFO memory used_memory`` after minus
before, divided by N.  Principals: one realm grown from ~10 principals to 100,000
and 1,000,000 (written in bulk as real records, ``TallyRealm.populate``),
with sequential (concurrency 1) AS and TGS latency measured at each size for
random clients and services drawn from the whole population.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from tally_protocol.principal import Principal
from tally_protocol.replay import REPLAY_KEY_SIZE, replay_ttl_ms
from tally_runtime.replay_cache import BUCKET_S, MEMBER_SIZE, RedisReplayCache

from .kdc_bench import warm_up
from .redis_server import RedisServer, store_client
from .report import Report, Row
from .tally_realm import REALM, SERVICE_EVERY, TallyRealm, bulk_name
from .wrk_load import run_wrk, write_items

MEMORY_SECTION = "4a. Redis memory per live replay entry"
PRINCIPALS_SECTION = "4c. KDC latency (concurrency 1) with N principals in the store"
#: The services' default skew window, and how long every entry is held beyond its TTL while counted.
SKEW_S = 300
HOLD_MS = 600_000


def replay_memory(report: Report, workdir: Path, entries: int) -> None:
    redis = RedisServer(workdir / "redis-memory", "redis-memory").start()
    try:
        client = store_client(redis.url)
        cache = RedisReplayCache(client)
        cache.seed(birth=0)
        before = redis.used_memory()
        now = int(time.time())
        for i in range(entries):
            # Live entries as steady traffic leaves them: ctimes spread evenly over the skew window (so
            # over its buckets); every TTL lengthened alike so that none expires while they are counted.
            ctime = now - SKEW_S + (i * SKEW_S) // entries
            ttl_ms = replay_ttl_ms(ctime, now, SKEW_S, 2) + HOLD_MS
            if not cache.claim(os.urandom(REPLAY_KEY_SIZE), ttl_ms, ctime=ctime, max_skew_s=SKEW_S):
                raise RuntimeError("a fresh replay key was refused")
        after = redis.used_memory()
        keys = client.dbsize()
    finally:
        redis.stop()
    per = (after - before) / entries
    report.add(Row(MEMORY_SECTION, f"used_memory delta / {entries:,} live entries", per, "B/entry",
                   note=f"ctimes over {SKEW_S} s; {MEMBER_SIZE} B members of sets per (shard, {BUCKET_S} s of "
                        f"ctime); dbsize {keys:,} (256 markers + the sets)"))
    report.ratio("4a. bytes per replay entry", per, 1.0, "<=", 100.0)


def _latency_rows(report: Report, realm: TallyRealm, workdir: Path, population: int, *, seconds: float,
                  rng: random.Random) -> dict[str, float]:
    clients = [Principal(bulk_name(i), REALM)
               for i in rng.sample(range(population), min(population, 400)) if i % SERVICE_EVERY]
    services = [Principal(bulk_name(i), REALM)
                for i in rng.sample(range(0, population, SERVICE_EVERY), min(population // SERVICE_EVERY, 64))]
    bodies = max(2000, int(1500 * seconds))
    memory = realm.redis.used_memory()
    warm_up(realm, workdir, [realm.login(c) for c in clients[:4]])
    p50: dict[str, float] = {}
    for exchange in ("as", "tgs"):
        if exchange == "as":
            items = realm.as_bodies(bodies, clients)
        else:
            tgts = [realm.login(c) for c in clients[:32]]
            items = realm.tgs_bodies(bodies, tgts, services)
        path = write_items(workdir / f"scale-{exchange}.txt", items)
        res = run_wrk(realm.kdc_url, f"/v1/{exchange}", mode="post", items=path, connections=1, seconds=seconds)
        if not res.valid:
            raise RuntimeError(f"scale {exchange} with {population:,} principals: {res.bad} refused, "
                               f"{res.reused} reused (see {realm.dir / 'kdc.log'})")
        report.add(Row(PRINCIPALS_SECTION, f"{exchange.upper()} with {population:,} principals", res.rate, "exch/s",
                       res.p50_ms, res.p99_ms, f"redis used_memory {memory / 2**20:,.0f} MiB"))
        p50[exchange] = res.p50_ms
    return p50


def principals(report: Report, workdir: Path, sizes: list[int], *, seconds: float) -> None:
    redis = RedisServer(workdir / "redis-scale", "redis-scale").start()
    realm = TallyRealm(workdir / "realm-scale", redis)
    rng = random.Random(5)
    p50: dict[int, dict[str, float]] = {}
    try:
        realm.create(clients=sizes[0])
        realm.start_kdc()
        for size in sizes:
            if size > realm.population:
                t0 = time.monotonic()
                realm.populate(realm.population, size)
                report.notes.append(f"4c. populated {size:,} principals in {time.monotonic() - t0:.1f} s "
                                    f"(pipelined SET + ZADD of real records, keys wrapped by the master key)")
            p50[size] = _latency_rows(report, realm, workdir, size, seconds=seconds, rng=rng)
    finally:
        realm.stop()
        redis.stop()
    small, large = sizes[0], sizes[-1]
    for exchange in ("as", "tgs"):
        # "Flat": the median exchange at the largest store within 10% of the smallest.
        report.ratio(f"4c. {exchange.upper()} p50 latency at {large:,} / at {small:,} principals",
                     p50[large][exchange], p50[small][exchange], "<=", 1.1)
