"""Real Redis topologies on loopback for tests: a Sentinel group, a 3x3 Cluster, a TLS + ACL standalone.

Every server is a redis-server process on a free 127.0.0.1 port, configured by a
file in its own directory (its log lands there too, and is quoted when it fails).
Start-up polls rather than sleeps: the Sentinel group is told its peers up front
(``sentinel myid`` / ``known-sentinel`` / ``known-replica``), so it needs no
discovery round.  When redis-server cannot start the fixture raises
``RuntimeError``: Redis tests fail, they never skip.

A failover leaves its shard without a replica; ``revive()`` restarts the killed
node on its port and directory, and Sentinel or the Cluster makes it a replica
of the new master (needed when clients require ``min_replicas`` >= 1).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from redis.crc import key_slot

from tests.support.redis_proc import RedisProcess, free_port

HOST = "127.0.0.1"
MASTER_NAME = "tally"
#: Short enough that a failover takes a few seconds, long enough not to flap on a busy 2-core machine.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
CLUSTER_NODE_TIMEOUT_MS = 1000


def redis_server_exe() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server); Redis tests cannot run")
    return exe


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``check`` (Redis errors count as "not yet") until true, else RuntimeError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.exceptions.RedisError, OSError) as e:
            last = e
        time.sleep(interval)
    raise RuntimeError(f"{what} within {timeout}s" + (f" (last error: {last})" if last else ""))


class ServerProcess(RedisProcess):
    """One redis-server (or sentinel) run from ``<dir>/redis.conf``; ``conf`` lines are written once."""

    def __init__(self, directory: Path, port: int, conf: Iterable[str], *, sentinel: bool = False,
                 client_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(directory, port)
        self.dir = directory
        self.sentinel = sentinel
        self.client_kwargs = client_kwargs or {}
        directory.mkdir(parents=True, exist_ok=True)
        # Always a port of its own (never the default 6379); a later "port 0" (TLS only) overrides it.
        base = [f"bind {HOST}", f"port {port}", "protected-mode yes", f"dir {directory}",
                f"logfile {directory / 'redis.log'}", "save \"\"", "appendonly no",
                "repl-diskless-sync-delay 0"]  # a replica syncs at once
        if sentinel:
            base = [f"bind {HOST}", f"port {port}", f"dir {directory}", f"logfile {directory / 'redis.log'}"]
        (directory / "redis.conf").write_text("\n".join([*base, *conf]) + "\n")

    def launch(self, *extra: str) -> None:
        args = [redis_server_exe(), str(self.dir / "redis.conf"), *(["--sentinel"] if self.sentinel else []), *extra]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, timeout: float = 10.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A plain client on this one process (never through a topology-aware client)."""
        return redis.Redis(**{"host": HOST, "port": self.port, "socket_connect_timeout": 0.5, "socket_timeout": 2,
                              **self.client_kwargs, **kwargs})

    def wait_ready(self, timeout: float = 10.0) -> None:
        def ready() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited")
            with self.client() as c:
                return bool(c.ping())
        try:
            wait_until(ready, timeout, f"redis-server did not answer on port {self.port}")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nlog:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join((self.dir / "redis.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no goodbye to replicas or sentinels, like a crashed machine."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()


def start_all(servers: Iterable[ServerProcess], timeout: float = 10.0) -> None:
    """Launch in parallel, then wait for each: one start-up delay, not one per server."""
    servers = list(servers)
    for s in servers:
        s.launch()
    try:
        for s in servers:
            s.wait_ready(timeout)
    except BaseException:
        for s in servers:
            s.stop()
        raise


def _info(server: ServerProcess, section: str) -> dict[str, Any]:
    with server.client() as c:
        return dict(c.info(section))


def _replicating(master: ServerProcess, key: str = "tally-test:settled") -> bool:
    """A write on ``master`` is acknowledged by a replica: a linked replica of Redis 7 streams writes only
    after its first acknowledgement (up to a second later), and a write before that is lost in a failover.
    On a Cluster ``key`` must be in one of ``master``'s slots."""
    with master.client() as c:
        c.set(key, "1")
        return int(c.execute_command("WAIT", 1, 200)) >= 1


def _key_in_slots(first: int, last: int) -> str:
    return next(k for k in (f"tally-test:settled:{i}" for i in range(100_000)) if first <= key_slot(k.encode()) <= last)


class SentinelGroup:
    """One master, one replica and three sentinels (quorum 2) watching ``MASTER_NAME``.

    ``password`` protects the data nodes (requirepass/masterauth, and the sentinels'
    auth-pass); ``sentinel_password`` protects the sentinels themselves.
    """

    def __init__(self, workdir: Path, *, password: str | None = None, sentinel_password: str | None = None) -> None:
        self.workdir = workdir
        self.password = password
        self.sentinel_password = sentinel_password
        self.master_name = MASTER_NAME
        data_ports = [free_port(), free_port()]
        data_conf = [f"requirepass {password}", f"masterauth {password}"] if password else []
        creds = {"password": password} if password else {}
        self.data = [ServerProcess(workdir / f"data{i}", port, data_conf, client_kwargs=creds)
                     for i, port in enumerate(data_ports)]
        master, replica = self.data
        with (replica.dir / "redis.conf").open("a") as f:
            f.write(f"replicaof {HOST} {master.port}\n")
        ports = [free_port() for _ in range(3)]
        ids = [f"{i + 1:040x}" for i in range(3)]  # fixed run ids let each sentinel know its peers from the start
        self.sentinels: list[ServerProcess] = []
        for i, port in enumerate(ports):
            conf = [f"sentinel myid {ids[i]}", "sentinel resolve-hostnames no",
                    f"sentinel monitor {MASTER_NAME} {HOST} {master.port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    f"sentinel known-replica {MASTER_NAME} {HOST} {replica.port}"]
            conf += [f"sentinel known-sentinel {MASTER_NAME} {HOST} {p} {ids[j]}"
                     for j, p in enumerate(ports) if j != i]
            if password:
                conf.append(f"sentinel auth-pass {MASTER_NAME} {password}")
            if sentinel_password:
                conf += [f"requirepass {sentinel_password}", f"sentinel sentinel-pass {sentinel_password}"]
            s_creds = {"password": sentinel_password} if sentinel_password else {}
            self.sentinels.append(ServerProcess(workdir / f"sentinel{i}", port, conf, sentinel=True,
                                                client_kwargs=s_creds))
        self.killed: ServerProcess | None = None

    def start(self, timeout: float = 15.0) -> SentinelGroup:
        start_all([*self.data, *self.sentinels])
        wait_until(self._settled, timeout, "the Sentinel group did not settle (replica in sync, peers known)")
        return self

    def _settled(self) -> bool:
        if _info(self.data[1], "replication").get("master_link_status") != "up" or not _replicating(self.data[0]):
            return False
        for s in self.sentinels:
            with s.client() as c:
                state = c.sentinel_master(MASTER_NAME)
            if state["num-other-sentinels"] != 2 or state["num-slaves"] != 1 or "s_down" in state["flags"]:
                return False
        return True

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"{HOST}:{s.port}" for s in self.sentinels) + f"/{MASTER_NAME}"

    def env(self) -> dict[str, str]:
        """TALLY_REDIS_* settings for this group (passwords go in 0600 files beside it)."""
        env = {"TALLY_REDIS_URL": self.url}
        if self.password:
            env["TALLY_REDIS_PASSWORD_FILE"] = str(_password_file(self.workdir / "redis.password", self.password))
        if self.sentinel_password:
            env["TALLY_REDIS_SENTINEL_PASSWORD_FILE"] = str(
                _password_file(self.workdir / "sentinel.password", self.sentinel_password))
        return env

    def master_port(self) -> int:
        """The master according to a live sentinel majority's view (the first one that answers)."""
        for s in self.sentinels:
            if not s.running:
                continue
            try:
                with s.client() as c:
                    addr = c.sentinel_get_master_addr_by_name(MASTER_NAME)
                if addr:
                    return int(addr[1])
            except (redis.exceptions.RedisError, OSError):
                continue
        raise RuntimeError("no sentinel names a master")

    def node(self, port: int) -> ServerProcess:
        return next(n for n in self.data if n.port == port)

    def master(self) -> ServerProcess:
        return self.node(self.master_port())

    def replica(self) -> ServerProcess:
        """A live data node that is not the master."""
        master = self.master_port()
        return next(n for n in self.data if n.running and n.port != master)

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        victim = self.master()
        victim.kill()
        self.killed = victim
        return victim.port

    def wait_failover(self, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a live master that says it is one; returns its port."""
        old = self.killed.port if self.killed else None

        def promoted() -> bool:
            ports = set()
            for s in self.sentinels:
                with s.client() as c:
                    addr = c.sentinel_get_master_addr_by_name(MASTER_NAME)
                ports.add(int(addr[1]) if addr else None)
            if len(ports) != 1 or old in ports or None in ports:
                return False
            port = ports.pop()
            return port is not None and _info(self.node(port), "replication")["role"] == "master"
        wait_until(promoted, timeout, "Sentinel did not fail over", interval=0.1)
        return self.master_port()

    def revive(self, timeout: float = 30.0) -> None:
        """Restart the killed node as a replica of the new master (as an operator would), wait until in sync.

        Left to itself Sentinel would convert the returning master too, but only after ~8 s of grace."""
        node, self.killed = self.killed, None
        if node is None:
            return
        node.launch("--replicaof", HOST, str(self.master_port()))
        node.wait_ready()
        wait_until(lambda: _info(node, "replication").get("master_link_status") == "up", timeout,
                   "the revived node did not become an in-sync replica", interval=0.1)

    def stop(self) -> None:
        for s in [*self.sentinels, *self.data]:
            s.kill()  # nothing to keep, and a master's SIGTERM shutdown waits for its replicas


class RedisCluster3x3:
    """Six cluster-enabled nodes: three masters with one replica each, made by ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path, *, password: str | None = None) -> None:
        self.workdir = workdir
        self.password = password
        auth = [f"requirepass {password}", f"masterauth {password}"] if password else []
        creds = {"password": password} if password else {}
        self.nodes: list[ServerProcess] = []
        for i in range(6):
            port = free_port()
            self.nodes.append(ServerProcess(workdir / f"node{i}", port, [
                f"cluster-port {free_port()}",  # explicit bus port: port + 10000 may be taken or > 65535
                "cluster-enabled yes", "cluster-config-file nodes.conf",
                f"cluster-node-timeout {CLUSTER_NODE_TIMEOUT_MS}",
                "cluster-replica-validity-factor 0",  # a replica may always take over (tests kill masters at will)
                *auth], client_kwargs=creds))
        self.killed: ServerProcess | None = None

    def start(self, timeout: float = 30.0) -> RedisCluster3x3:
        start_all(self.nodes)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed; the Cluster fixture needs it")
        args = [cli, "--cluster", "create", *(f"{HOST}:{n.port}" for n in self.nodes),
                "--cluster-replicas", "1", "--cluster-yes"]
        if self.password:
            args[1:1] = ["-a", self.password, "--no-auth-warning"]
        made = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if made.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed ({made.returncode}):\n{made.stdout}\n{made.stderr}")
        try:
            wait_until(self._healthy, timeout, "the Cluster did not reach cluster_state:ok with 3 synced replicas")
        except RuntimeError:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        live = [n for n in self.nodes if n.running]
        for n in live:
            with n.client() as c:
                if c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    return False
        replicas = [n for n in live if _info(n, "replication")["role"] == "slave"]
        masters = [n for n in live if _info(n, "replication")["role"] == "master"]
        return len(replicas) == len(live) - 3 and all(
            _info(n, "replication").get("master_link_status") == "up" for n in replicas) and (
            len(replicas) < 3 or self._masters_replicating(masters))

    def _masters_replicating(self, masters: list[ServerProcess]) -> bool:
        by_port = {m.port: m for m in masters}
        with masters[0].client() as c:
            ranges = c.execute_command("CLUSTER SLOTS")
        return all(_replicating(by_port[int(r[2][1])], _key_in_slots(int(r[0]), int(r[1])))
                   for r in ranges if int(r[2][1]) in by_port)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def env(self) -> dict[str, str]:
        env = {"TALLY_REDIS_URL": self.url}
        if self.password:
            env["TALLY_REDIS_PASSWORD_FILE"] = str(_password_file(self.workdir / "redis.password", self.password))
        return env

    def node(self, port: int) -> ServerProcess:
        return next(n for n in self.nodes if n.port == port)

    def master_of_slot(self, slot: int) -> int:
        """Port of the master serving ``slot``, asked of a live node."""
        for n in self.nodes:
            if not n.running:
                continue
            try:
                with n.client() as c:
                    for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                        if start <= slot <= end:
                            return int(master[1])
            except (redis.exceptions.RedisError, OSError):
                continue
        raise RuntimeError(f"no live node knows who serves slot {slot}")

    def replica_of(self, master_port: int) -> ServerProcess:
        """The live node replicating the master on ``master_port``."""
        for n in self.nodes:
            if n.running and n.port != master_port:
                info = _info(n, "replication")
                if info["role"] == "slave" and int(info["master_port"]) == master_port:
                    return n
        raise RuntimeError(f"no live replica of port {master_port}")

    def masters(self) -> list[int]:
        return sorted({self.master_of_slot(s) for s in (0, 8192, 16383)})

    def kill_master_of_slot(self, slot: int) -> int:
        """SIGKILL the master serving ``slot``; returns its port."""
        victim = self.node(self.master_of_slot(slot))
        victim.kill()
        self.killed = victim
        self._killed_slot = slot
        return victim.port

    def kill_a_master(self) -> int:
        return self.kill_master_of_slot(0)

    def wait_failover(self, timeout: float = 30.0) -> int:
        """Wait until a live replica serves the killed master's slots and every live node says ok."""
        old = self.killed.port if self.killed else None

        def promoted() -> bool:
            owner = self.master_of_slot(self._killed_slot)
            if owner == old or not self.node(owner).running:
                return False
            return all(self._cluster_ok(n) for n in self.nodes if n.running)
        wait_until(promoted, timeout, "the Cluster did not fail over", interval=0.1)
        return self.master_of_slot(self._killed_slot)

    @staticmethod
    def _cluster_ok(node: ServerProcess) -> bool:
        with node.client() as c:
            return bool(c.execute_command("CLUSTER INFO").get("cluster_state") == "ok")

    def revive(self, timeout: float = 30.0) -> None:
        """Restart the killed node from its nodes.conf; the Cluster makes it a replica of its successor."""
        node, self.killed = self.killed, None
        if node is None:
            return
        node.start()
        wait_until(self._healthy, timeout, "the revived node did not rejoin as an in-sync replica", interval=0.1)

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()


class TlsAclRedis:
    """A standalone redis-server reachable only over TLS, with an ACL user and the default user disabled.

    The CA, server and client certificates are made at start (EC P-256, one day).
    ``require_client_cert`` makes the server demand the client certificate (mutual TLS).
    """

    def __init__(self, workdir: Path, *, username: str = "tally", password: str = "s3cret-acl-pass",
                 require_client_cert: bool = False) -> None:
        self.workdir = workdir
        self.username = username
        self.password = password
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_file, self.cert_file, self.key_file, server_cert, server_key = make_certificates(workdir)
        self.password_file = _password_file(workdir / "redis.password", password)
        self.server = ServerProcess(workdir / "server", self.port, [
            "port 0", f"tls-port {self.port}", f"tls-cert-file {server_cert}", f"tls-key-file {server_key}",
            f"tls-ca-cert-file {self.ca_file}", f"tls-auth-clients {'yes' if require_client_cert else 'no'}",
            "user default off", f"user {username} on >{password} ~* &* +@all"],
            client_kwargs={"ssl": True, "ssl_ca_certs": str(self.ca_file), "ssl_certfile": str(self.cert_file),
                           "ssl_keyfile": str(self.key_file), "username": username, "password": password})

    def start(self) -> TlsAclRedis:
        start_all([self.server])
        return self

    @property
    def url(self) -> str:
        return f"rediss://{HOST}:{self.port}/0"

    def env(self, *, client_cert: bool = True) -> dict[str, str]:
        env = {"TALLY_REDIS_URL": self.url, "TALLY_REDIS_USERNAME": self.username,
               "TALLY_REDIS_PASSWORD_FILE": str(self.password_file), "TALLY_REDIS_TLS_CA_FILE": str(self.ca_file)}
        if client_cert:
            env |= {"TALLY_REDIS_TLS_CERT_FILE": str(self.cert_file), "TALLY_REDIS_TLS_KEY_FILE": str(self.key_file)}
        return env

    def stop(self) -> None:
        self.server.stop()


def _password_file(path: Path, password: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return path


def make_certificates(directory: Path) -> tuple[Path, Path, Path, Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, PEM files in ``directory``.

    Returns (ca, client cert, client key, server cert, server key); keys are written 0600.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tallystick test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server, server_key = leaf(HOST, ExtendedKeyUsageOID.SERVER_AUTH,
                              [x509.IPAddress(ipaddress.ip_address(HOST))])
    client, client_key = leaf("tally-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def write(name: str, data: bytes, mode: int = 0o644) -> Path:
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def pem_key(key: Any) -> bytes:
        return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))

    pem = serialization.Encoding.PEM
    return (write("ca.pem", ca.public_bytes(pem)), write("client.pem", client.public_bytes(pem)),
            write("client.key", pem_key(client_key), 0o600), write("server.pem", server.public_bytes(pem)),
            write("server.key", pem_key(server_key), 0o600))
