"""Secret files are read only when nobody but their owner, this user or root, can read them (ACLs included)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from tally_protocol.errors import ConfigurationError
from tally_runtime.secret_files import AclEntry, access_problem, parse_acl, read_secret, write_secret

USER_OBJ, USER, GROUP_OBJ, MASK, OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
ANY = 0xFFFFFFFF  # the qualifier of entries that name no one


def status(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((0o100000 | mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


def acl_bytes(*entries: tuple[int, int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def systemd_credential(service_uid: int) -> list[AclEntry]:
    """What systemd writes for LoadCredential=: root's file, mode 0400, plus read for the service's user."""
    return parse_acl(acl_bytes((USER_OBJ, 4, ANY), (USER, 4, service_uid), (GROUP_OBJ, 0, ANY), (MASK, 4, ANY),
                               (OTHER, 0, ANY)))


def test_a_0600_file_of_this_user_may_hold_a_secret() -> None:
    assert access_problem(Path("k"), status(0o600, 1000), None, euid=1000) is None


def test_a_root_owned_file_may_hold_a_secret() -> None:
    assert access_problem(Path("k"), status(0o400, 0), None, euid=1000) is None


def test_a_file_owned_by_another_user_is_refused_with_the_chown_to_run() -> None:
    problem = access_problem(Path("/etc/tally/k"), status(0o600, 1001), None, euid=1000)
    assert problem is not None and "uid 1001" in problem and "chown 1000 /etc/tally/k" in problem


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610])
def test_group_or_other_access_is_refused_with_the_chmod_to_run(mode: int) -> None:
    problem = access_problem(Path("k"), status(mode, 1000), None, euid=1000)
    assert problem is not None and "chmod 600 k" in problem


def test_a_systemd_credential_granted_to_this_user_is_accepted() -> None:
    # Its mode reads 0440 (the group bits show the ACL mask), yet only root and this user can read it.
    assert access_problem(Path("k"), status(0o440, 0), systemd_credential(1000), euid=1000) is None


def test_an_acl_granting_another_user_is_refused() -> None:
    problem = access_problem(Path("k"), status(0o440, 0), systemd_credential(1234), euid=1000)
    assert problem is not None and "user 1234" in problem and "setfacl -b k" in problem


def test_an_acl_granting_the_group_is_refused() -> None:
    acl = parse_acl(acl_bytes((USER_OBJ, 6, ANY), (GROUP_OBJ, 4, ANY), (MASK, 4, ANY), (OTHER, 0, ANY)))
    problem = access_problem(Path("k"), status(0o640, 1000), acl, euid=1000)
    assert problem is not None and "its group" in problem


def test_an_acl_entry_masked_off_grants_nothing() -> None:
    acl = parse_acl(acl_bytes((USER_OBJ, 6, ANY), (USER, 4, 1234), (GROUP_OBJ, 4, ANY), (MASK, 0, ANY),
                              (OTHER, 0, ANY)))
    assert access_problem(Path("k"), status(0o600, 1000), acl, euid=1000) is None


def test_a_malformed_acl_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_acl(b"\x02\x00\x00\x00\x01")


def test_read_secret_refuses_a_real_file_others_can_read(tmp_path: Path) -> None:
    path = write_secret(tmp_path / "k", b"secret")
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        read_secret(path, what="master key file")


def test_read_secret_reads_a_real_systemd_style_credential(tmp_path: Path) -> None:
    path = tmp_path / "credential"
    path.write_bytes(b"secret")
    path.chmod(0o400)
    os.setxattr(path, "system.posix_acl_access", acl_bytes(
        (USER_OBJ, 4, ANY), (USER, 4, os.geteuid()), (GROUP_OBJ, 0, ANY), (MASK, 4, ANY), (OTHER, 0, ANY)))
    assert path.stat().st_mode & 0o777 == 0o440
    assert read_secret(path) == b"secret"


def test_read_secret_refuses_a_real_file_whose_acl_lets_another_user_read(tmp_path: Path) -> None:
    path = write_secret(tmp_path / "k", b"secret")
    os.setxattr(path, "system.posix_acl_access", acl_bytes(
        (USER_OBJ, 6, ANY), (USER, 4, os.geteuid() + 4321), (GROUP_OBJ, 0, ANY), (MASK, 4, ANY), (OTHER, 0, ANY)))
    with pytest.raises(ConfigurationError, match="through its ACL"):
        read_secret(path)


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="keytab .* does not exist"):
        read_secret(tmp_path / "none", what="keytab")
