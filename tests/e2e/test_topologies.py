"""Issue 4, "Redis topologies", end to end: two KDC and two relying-service processes on each
topology (standalone, Sentinel, Cluster).

* the whole flow works through every KDC and every service replica, mutual authentication included;
* one captured request sent to both service replicas (a TGS or AS request: to both KDCs) at the
  same moment is accepted exactly once;
* SIGKILL of the master under load: every answer is 200 or 503 (never a 500, never no answer),
  each stream meets a 503 during the outage, service is correct after the failover, the SDK gets
  there by itself (it waits out ``Retry-After``), and no request accepted at any time, replayed
  after the failover, is accepted again: not even one the master acknowledged while its replica
  was held back (the lost write that ``WAIT`` exists for).

One topology per parameter, shared by its tests; the failover test is defined last, so pytest
runs it last on each topology (parametrised module fixtures are grouped per parameter).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from client_sdk import Client
from tally_protocol.errors import ReplayDetected
from tests.e2e.realm import REALM
from tests.e2e.topology_harness import STORES, ReplicatedRealm, replicated_realm
from tests.e2e.traffic import LoadLoop, Outcome, Signer, labels, race, send, wait_for

pytestmark = pytest.mark.e2e

#: Copies of one captured request in a race, spread over the replicas.
RACERS = 8
#: Races per scenario: each is an independent chance for a double acceptance.
ROUNDS = 3
#: Answers in a row that count as "service is back".
RECOVERED_AFTER = 10
OUTAGE_TIMEOUT_S = 30.0
RECOVERY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module", params=list(STORES))
def realm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRealm]:
    with replicated_realm(request.param, tmp_path_factory.mktemp(request.param)) as r:
        yield r


def alice(r: ReplicatedRealm, kdc_url: str, sleep: Callable[[float], None] = time.sleep) -> Client:
    return Client(kdc_url, f"alice@{REALM}", key_file=r.workdir / "alice.key", sleep=sleep)


@pytest.fixture(scope="module")
def signer(realm: ReplicatedRealm) -> Signer:
    return Signer(alice(realm, realm.kdc_urls[0]), realm.workdir / "alice.key")


def exactly_one_accepted(outcomes: list[Outcome]) -> None:
    summary = labels(outcomes)
    assert summary == {"200": 1, f"401 {ReplayDetected.code}": len(outcomes) - 1}, summary


def test_whole_flow_works_through_every_kdc_and_every_service_replica(realm: ReplicatedRealm) -> None:
    for kdc_url in realm.kdc_urls:
        client = alice(realm, kdc_url)
        client.login()  # AS
        for api_url in realm.api_urls:  # TGS once, then the ticket is cached; the SDK checks every reply's proof
            assert client.get(f"{api_url}/whoami", service="api").json() == {"principal": f"alice@{REALM}"}
            echoed = client.post(f"{api_url}/echo", data=b"pay 10", service="api")
            assert (echoed.status_code, echoed.content) == (200, b"pay 10")


def test_one_request_raced_to_both_service_replicas_is_accepted_once(realm: ReplicatedRealm, signer: Signer) -> None:
    for _ in range(ROUNDS):
        captured = signer.service_request(realm.api_urls[0], body=b"pay 10")
        copies = [replace(captured, url=realm.api_urls[i % len(realm.api_urls)]) for i in range(RACERS)]
        exactly_one_accepted(race(copies))


@pytest.mark.parametrize("exchange", ["tgs", "as"])
def test_one_kdc_request_raced_to_both_kdcs_is_accepted_once(realm: ReplicatedRealm, signer: Signer,
                                                             exchange: str) -> None:
    make = signer.tgs_request if exchange == "tgs" else signer.as_request
    for _ in range(ROUNDS):
        captured = make(realm.kdc_urls[0])
        copies = [replace(captured, url=realm.kdc_urls[i % len(realm.kdc_urls)]) for i in range(RACERS)]
        exactly_one_accepted(race(copies))


def test_master_killed_under_load_gives_503s_then_service_and_no_replay_across_it(realm: ReplicatedRealm,
                                                                                 signer: Signer) -> None:
    load = LoadLoop(signer, realm.kdc_urls, realm.api_urls, lambda sleep: alice(realm, realm.kdc_urls[1], sleep=sleep))
    try:
        with load:
            kill_the_master_under(load, realm)
    finally:
        print(load.summary())  # shown when the test fails (or with -s): what each stream saw in each phase

    every = load.outcomes
    assert set(labels(every)) <= {"200", "503 STORE_UNAVAILABLE", "503 REPLAY_CACHE_RECOVERING"}, labels(every)
    assert all(o.retry_after for o in every if o.status == 503)
    assert all(o.status == 200 for o in every if o.phase == "before"), labels(o for o in every if o.phase == "before")
    sdk_errors = {c.error for c in load.sdk_calls if c.error}
    assert sdk_errors <= {"STORE_UNAVAILABLE", "REPLAY_CACHE_RECOVERING"}, sdk_errors  # typed, after its one retry
    sdk_waits = {w for c in load.sdk_calls for w in c.waits}
    assert sdk_waits and sdk_waits <= {1}, sdk_waits  # it slept the services' Retry-After (1 s) before retrying

    accepted = [o for o in every if o.status == 200]
    replayed = [send(o.request, stream=o.stream, phase="replay") for o in accepted]
    assert set(labels(replayed)) <= {f"401 {ReplayDetected.code}", "503 REPLAY_CACHE_RECOVERING"}, labels(replayed)


def kill_the_master_under(load: LoadLoop, realm: ReplicatedRealm) -> None:
    """The fault sequence, each step waiting (bounded) for what it must cause; ``load.phase`` names the step."""
    store = realm.store
    wait_for(lambda: all(load.consecutive_successes(s) >= 3 for s in load.streams), RECOVERY_TIMEOUT_S,
             "every stream succeeds before the fault")
    load.phase = "held back"  # from the first moment: the replica stops before the master's link fills
    held = store.hold_back_replica()
    try:
        if held is not None:  # what the master takes now never reaches its replica: no claim may be accepted
            wait_for(lambda: any(load.saw_refusal(s, "held back") for s in load.streams[:-1]), OUTAGE_TIMEOUT_S,
                     "a claim the replica cannot acknowledge is refused with 503 (WAIT)")
        load.phase = "outage"
        store.kill_master()
    finally:
        if held is not None:
            held.release()
    wait_for(lambda: all(load.saw_refusal(s, "outage") for s in load.streams), OUTAGE_TIMEOUT_S,
             "every stream meets a 503 once the master is killed")
    store.wait_failover()
    store.revive()
    load.phase = "after"
    wait_for(lambda: all(load.consecutive_successes(s) >= RECOVERED_AFTER for s in load.streams),
             RECOVERY_TIMEOUT_S, f"every stream answers {RECOVERED_AFTER} times in a row with 200")
