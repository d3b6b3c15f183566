"""The compose deployment, run without containers: the processes deploy/docker-compose.yml starts, as it starts them.

Each compose service runs here as a local process with its own command, environment and mounted files, read
from the compose file itself (tests/deploy/compose_local.py maps host names to free 127.0.0.1 ports and
container paths to files in a temporary directory). The operator's steps are deploy/README.md's compose
path: secrets, the certificate from deploy/make-cert.sh, then `tools` to create the realm and the keytabs.
A client then goes through the TLS proxy, verifying it against the generated CA, to both services and both KDCs.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from client_sdk import Client
from tests.deploy.compose_local import LocalStack, load_compose, tally_services
from tests.deploy.test_proxy_tls import make_cert, nginx
from tests.support.process_group import stop_groups

pytestmark = pytest.mark.e2e

REALM = "EXAMPLE.COM"  # compose/tally.toml's


@dataclass
class Stack:
    local: LocalStack
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.local.workdir

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(argv, env=env, cwd=self.workdir, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def tools(self, *args: str) -> str:
        """`docker compose run --rm tools ARGS`, container paths in ARGS mapped like the compose file's."""
        result = subprocess.run(self.local.tally_argv("tools", *(self.local.rewrite(a) for a in args)),
                                env=self.local.environment("tools"), cwd=self.workdir, capture_output=True,
                                text=True, check=False, timeout=60)
        assert result.returncode == 0, f"tools {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_groups(self.procs.values(), timeout=15)


def wait_until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (requests.RequestException, redis.RedisError, OSError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s (last error: {last})")


def write_secret(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    compose = load_compose()
    s = Stack(LocalStack(compose, tmp_path_factory.mktemp("compose")))
    s.local.prepare()
    try:
        # deploy/README.md, the compose path: secrets, data directory, certificate.
        write_secret(s.workdir / "secrets" / "redis_password", secrets.token_hex(32).encode() + b"\n")
        write_secret(s.workdir / "secrets" / "admin_secret_key", base64.b64encode(os.urandom(48)) + b"\n")
        (s.workdir / "data" / "redis").mkdir(parents=True, mode=0o700)
        make_cert(s.workdir / "tls", "localhost", "127.0.0.1")

        s.start("redis", s.local.command("redis"), s.local.environment("redis"))
        wait_until(lambda: store(s).ping(), "redis-server did not answer")

        s.tools("kdc", "init")
        s.tools("admin", "add-service", "api", "--keytab", "/secrets/api.keytab")
        s.tools("admin", "add-service", "reports", "--keytab", "/secrets/reports.keytab")
        s.tools("admin", "add-client", "alice", "--key-out", "/secrets/alice.key")

        servers = [n for n, svc in tally_services(compose).items() if "profiles" not in svc]
        for name in servers:
            s.start(name, s.local.tally_argv(name), s.local.environment(name))
        for name in servers:
            url = f"http://127.0.0.1:{s.local.port(name, 8080)}/healthz"
            wait_until(lambda url=url: requests.get(url, timeout=1).ok, f"{name} did not come up")

        run = s.local.nginx_main_config()
        s.start("proxy", [nginx(), "-p", str(run.parent), "-c", str(run), "-g", "daemon off;"], dict(os.environ))
        wait_until(lambda: requests.get(f"{base(s)}/healthz", verify=ca(s), timeout=1).ok, "nginx did not come up")
        yield s
    finally:
        s.stop()


def store(s: Stack) -> redis.Redis:
    password = (s.workdir / "secrets" / "redis_password").read_text().strip()
    return redis.Redis(host="127.0.0.1", port=s.local.port("redis", 6379), password=password)


def base(s: Stack) -> str:
    return f"https://127.0.0.1:{s.local.port('proxy', 443)}"


def ca(s: Stack) -> str:
    return str(s.workdir / "tls" / "ca.crt")


def client(s: Stack) -> Client:
    session = requests.Session()
    session.verify = ca(s)  # the generated CA, not the system's: a wrong certificate fails the handshake
    session.trust_env = False  # else REQUESTS_CA_BUNDLE, if set, would replace session.verify (requests#3829)
    return Client(f"{base(s)}/kdc", f"alice@{REALM}", key_file=s.workdir / "secrets" / "alice.key",
                  ccache=s.workdir / "alice-ccache.json", session=session)


def access_lines(s: Stack, name: str) -> list[dict[str, object]]:
    """The JSON access lines a server has written so far (written after each response has gone out)."""
    lines = [json.loads(line) for line in s.log(name).splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("logger") == "gunicorn.access"]


def test_a_client_reaches_both_services_through_the_tls_proxy(stack: Stack) -> None:
    alice = client(stack)
    for service in ("api", "reports"):
        response = alice.get(f"{base(stack)}/{service}/whoami", service=service)  # mutual auth checked by the SDK
        assert response.status_code == 200 and response.json() == {"principal": f"alice@{REALM}"}, service


def test_a_signed_body_survives_the_proxy(stack: Stack) -> None:
    body = json.dumps({"transfer": 10}).encode()
    response = client(stack).post(f"{base(stack)}/api/echo", service="api", data=body,
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.content == body


def test_both_kdcs_answer_behind_the_proxy(stack: Stack) -> None:
    alice = client(stack)
    for _ in range(2):  # round robin: consecutive exchanges go to one KDC, then the other
        alice.login()

    def exchanges(name: str) -> list[dict[str, object]]:
        return [e for e in access_lines(stack, name) if e.get("path") == "/v1/as"]

    wait_until(lambda: exchanges("kdc1") and exchanges("kdc2"), "one KDC answered no AS exchange")
    assert all(e["status"] == 200 for name in ("kdc1", "kdc2") for e in exchanges(name))


def test_the_proxy_refuses_a_client_that_does_not_trust_its_ca(stack: Stack) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base(stack)}/healthz", verify=True, timeout=5)  # the system's CAs (or REQUESTS_CA_BUNDLE)


def test_the_proxy_keeps_metrics_from_the_public(stack: Stack) -> None:
    assert requests.get(f"{base(stack)}/kdc/metrics", verify=ca(stack), timeout=5).status_code == 404


def test_each_request_is_one_json_access_line_without_its_query_string(stack: Stack) -> None:
    response = requests.get(f"{base(stack)}/api/healthz?token=s3cret", headers={"User-Agent": "probe/1"},
                            verify=ca(stack), timeout=5)
    assert response.status_code == 200

    def probes() -> list[dict[str, object]]:
        return [e for e in access_lines(stack, "api") if e.get("user_agent") == "probe/1"]

    wait_until(probes, "no access line")  # written once the response has gone out
    [entry] = probes()
    assert {k: entry[k] for k in ("msg", "method", "path", "status", "remote")} == {
        "msg": "request", "method": "GET", "path": "/healthz", "status": 200, "remote": "127.0.0.1"}
    assert entry["request_id"] == response.headers["X-Request-Id"] and entry["duration_ms"] >= 0
    assert "s3cret" not in stack.log("api")


def test_redis_requires_its_password_and_keeps_an_append_only_file(stack: Stack) -> None:
    anonymous = redis.Redis(host="127.0.0.1", port=stack.local.port("redis", 6379), retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert store(stack).config_get("appendonly") == {"appendonly": "yes"}
    assert (stack.workdir / "data" / "redis" / "appendonlydir").is_dir()
