"""A throwaway MIT Kerberos realm on loopback: its own krb5.conf, database, keytabs and krb5kdc.

Debian's krb5-kdc, krb5-admin-server and krb5-user provide ``kdb5_util``,
``kadmin.local``, ``kinit`` and ``krb5kdc``; everything lives under the
benchmark's work directory and is found through ``KRB5_CONFIG`` and
``KRB5_KDC_PROFILE``, so the machine's own configuration is never read or
touched.  The client is created ``+requires_preauth`` (as every tallystick
login is pre-authenticated) and the KDC runs ``-w 2`` worker processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .procs import Server, free_port, wait_until

REALM = "BENCH.TEST"
CLIENT = f"bench@{REALM}"
SERVICE = f"HTTP/localhost@{REALM}"
#: The service as a GSSAPI host-based name (canonicalisation off in krb5.conf).
SERVICE_HOSTBASED = "HTTP@localhost"
ENCTYPES = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal"


def require_tools() -> None:
    missing = [t for t in ("kdb5_util", "kadmin.local", "krb5kdc", "kinit") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"MIT Kerberos tools missing ({', '.join(missing)}): "
                           "apt-get install -y krb5-kdc krb5-admin-server krb5-user libkrb5-dev")


class MitRealm:
    def __init__(self, workdir: Path) -> None:
        require_tools()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.client_keytab = self.dir / "client.keytab"
        self.service_keytab = self.dir / "service.keytab"
        self.ccache = self.dir / "ccache"
        self.rcache_dir = self.dir / "rcache"
        self.kdc: Server | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment every MIT tool and libkrb5 user of this realm runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
        env.update(KRB5_CONFIG=str(self.dir / "krb5.conf"), KRB5_KDC_PROFILE=str(self.dir / "kdc.conf"),
                   KRB5CCNAME=f"FILE:{self.ccache}", KRB5RCACHEDIR=str(self.rcache_dir),
                   KRB5_KTNAME=f"FILE:{self.service_keytab}", KRB5_CLIENT_KTNAME=f"FILE:{self.client_keytab}")
        env.update(extra)
        return env

    def _run(self, *args: str) -> None:
        result = subprocess.run(list(args), env=self.env(), capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stdout}{result.stderr}")

    def create(self) -> MitRealm:
        d, port = self.dir, self.port
        self.rcache_dir.mkdir(exist_ok=True)
        (d / "krb5.conf").write_text(f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    ignore_acceptor_hostname = true
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}
""")
        (d / "kdc.conf").write_text(f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}
[realms]
    {REALM} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        acl_file = {d}/kadm5.acl
        supported_enctypes = {ENCTYPES}
        max_life = 10h
        max_renewable_life = 7d
    }}
[logging]
    kdc = FILE:{d}/krb5kdc.log
""")
        (d / "kadm5.acl").write_text("")
        self._run("kdb5_util", "-r", REALM, "create", "-s", "-P", os.urandom(12).hex())
        for query in (f"addprinc -randkey +requires_preauth {CLIENT}", f"addprinc -randkey {SERVICE}",
                      f"ktadd -k {self.client_keytab} {CLIENT}", f"ktadd -k {self.service_keytab} {SERVICE}"):
            self._run("kadmin.local", "-r", REALM, "-q", query)
        return self

    def kinit(self) -> None:
        """A TGT for the client in the file ccache (what a GSSAPI initiator uses)."""
        self._run("kinit", "-k", "-t", str(self.client_keytab), CLIENT)

    def start_kdc(self, workers: int = 2) -> Server:
        exe = shutil.which("krb5kdc")
        assert exe is not None
        self.kdc = Server("krb5kdc", [exe, "-n", "-w", str(workers), "-r", REALM, "-P", str(self.dir / "kdc.pid")],
                          self.dir / "krb5kdc.stdout", env=self.env()).start()
        log = self.dir / "krb5kdc.log"
        wait_until(lambda: log.exists() and "commencing operation" in log.read_text(errors="replace"),
                   "krb5kdc", timeout=15)
        return self.kdc

    def kdc_log_counts(self) -> dict[str, int]:
        """How many AS/TGS requests krb5kdc logged, and how many it answered with a ticket."""
        text = (self.dir / "krb5kdc.log").read_text(errors="replace")
        counts = {"AS_REQ": 0, "TGS_REQ": 0, "ISSUE": 0, "NEEDED_PREAUTH": 0}
        for line in text.splitlines():
            for key in counts:
                if key in line:
                    counts[key] += 1
        return counts

    def stop(self) -> None:
        if self.kdc is not None:
            self.kdc.stop()
