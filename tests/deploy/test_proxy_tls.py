"""deploy/make-cert.sh makes a CA and a server certificate; nginx accepts deploy/nginx/tally.conf with them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.deploy.compose_local import DEPLOY, LocalStack, load_compose


def make_cert(tls: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(DEPLOY / "make-cert.sh"), *names], env={**os.environ, "TLS_DIR": str(tls)},
                          capture_output=True, text=True, check=True, timeout=60)


def nginx() -> str:
    exe = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx; .ci/run does): cannot check the proxy")
    return exe


def test_the_server_certificate_is_signed_by_the_ca_for_the_names_given(tmp_path: Path) -> None:
    make_cert(tmp_path, "tally.example.com", "127.0.0.1")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["tally.example.com"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_are_written_for_their_owner_only(tmp_path: Path) -> None:
    make_cert(tmp_path)
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0


def test_running_it_again_keeps_the_ca_so_clients_keep_trusting(tmp_path: Path) -> None:
    make_cert(tmp_path, "localhost")
    ca_before = (tmp_path / "ca.crt").read_bytes()
    make_cert(tmp_path, "localhost", "tally.example.com")
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    ca = x509.load_pem_x509_certificate(ca_before)
    x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes()).verify_directly_issued_by(ca)


def test_nginx_accepts_the_proxy_configuration(tmp_path: Path) -> None:
    stack = LocalStack(load_compose(), tmp_path)  # compose host names are resolved by nginx at load
    stack.prepare()
    make_cert(tmp_path / "tls", "localhost", "127.0.0.1")
    result = subprocess.run([nginx(), "-t", "-p", str(tmp_path / "nginx"), "-c", str(stack.nginx_main_config())],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


@pytest.mark.parametrize("mistake", ["proxy_pass http://tally_nowhere/;", "proxy_set_heder X-A b;"])
def test_nginx_check_would_catch_a_broken_configuration(tmp_path: Path, mistake: str) -> None:
    stack = LocalStack(load_compose(), tmp_path)
    stack.prepare()
    make_cert(tmp_path / "tls")
    site = tmp_path / "mapped" / "nginx" / "tally.conf"
    site.write_text(site.read_text().replace("location /kdc/ {", "location /kdc/ {\n        " + mistake))
    result = subprocess.run([nginx(), "-t", "-p", str(tmp_path / "nginx"), "-c", str(stack.nginx_main_config())],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode != 0
