"""TALLY_REDIS_* settings: each URL form, each setting, and a clear ConfigurationError for each mistake."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.errors import ConfigurationError
from tally_runtime import redis_settings
from tally_runtime.redis_settings import NAMES, RedisSettings, RedisUrl, Topology, format_url, parse_url
from tally_runtime.settings import Settings


def secret(tmp_path: Path, text: str, mode: int = 0o600, name: str = "redis.password") -> str:
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


def settings(url: str, **env: str) -> RedisSettings:
    return RedisSettings.from_env({"TALLY_REDIS_URL": url, **{f"TALLY_REDIS_{k}": v for k, v in env.items()}})


def refused(url: str, **env: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        settings(url, **env)
    return str(caught.value)


# --- URL forms --------------------------------------------------------------------------------------------

def test_no_url_means_the_embedded_store() -> None:
    assert RedisSettings.from_env({}).embedded


def test_a_redis_setting_without_a_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TALLY_REDIS_POOL_SIZE set but TALLY_REDIS_URL is not"):
        RedisSettings.from_env({"TALLY_REDIS_POOL_SIZE": "4"})


def test_standalone_url_names_host_port_and_database() -> None:
    s = settings("redis://cache.internal:6380/2").target
    assert s == RedisUrl(Topology.STANDALONE, False, (("cache.internal", 6380),), db=2)


def test_standalone_port_and_database_default_to_6379_and_0() -> None:
    assert settings("redis://127.0.0.1").target == RedisUrl(Topology.STANDALONE, False, (("127.0.0.1", 6379),), db=0)


def test_rediss_means_tls() -> None:
    assert parse_url("rediss://127.0.0.1:6379/0").tls


def test_unix_socket_url_with_database() -> None:
    s = parse_url("unix:///run/redis/redis.sock?db=3")
    assert (s.unix_path, s.db, s.endpoints) == ("/run/redis/redis.sock", 3, ())


def test_sentinel_url_names_the_sentinels_and_the_master() -> None:
    s = parse_url("redis+sentinel://10.0.0.1:26379,10.0.0.2,10.0.0.3:26380/mymaster")
    assert s.topology is Topology.SENTINEL and s.master_name == "mymaster" and s.db == 0
    assert s.endpoints == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380))


def test_sentinel_url_may_name_a_database_after_the_master() -> None:
    assert parse_url("rediss+sentinel://h1/mymaster/4").db == 4


def test_cluster_url_names_the_startup_nodes() -> None:
    s = parse_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert s.topology is Topology.CLUSTER and s.endpoints == (("127.0.0.1", 7000), ("127.0.0.1", 7001))


def test_ipv6_hosts_are_written_in_brackets() -> None:
    assert parse_url("redis+cluster://[::1]:7000,[fe80::2]").endpoints == (("::1", 7000), ("fe80::2", 6379))


def test_credentials_in_the_url_are_percent_decoded() -> None:
    s = parse_url("redis://app%40x:p%3Ass@127.0.0.1/0")
    assert (s.username, s.password) == ("app@x", "p:ss")


def test_unknown_scheme_is_refused_with_the_accepted_ones() -> None:
    message = refused("http://127.0.0.1:6379")
    assert "redis+sentinel://" in message and "rediss+cluster://" in message


def test_sentinel_url_without_a_master_name_is_refused() -> None:
    assert "master's name" in refused("redis+sentinel://h1:26379,h2:26379")


def test_sentinel_master_name_with_odd_characters_is_refused() -> None:
    assert "master name" in refused("redis+sentinel://h1/my%20master")


def test_cluster_with_a_database_other_than_0_is_refused() -> None:
    assert "only database 0" in refused("redis+cluster://h1:7000/1")


def test_cluster_database_0_is_accepted() -> None:
    assert parse_url("redis+cluster://h1:7000/0").db == 0


def test_standalone_url_with_several_hosts_is_refused() -> None:
    assert "names one server" in refused("redis://h1:6379,h2:6379/0")


@pytest.mark.parametrize("port", ["0", "65536", "x1", "-1"])
def test_a_port_outside_1_to_65535_is_refused(port: str) -> None:
    assert "port" in refused(f"redis://h1:{port}/0")


def test_an_empty_host_in_the_list_is_refused() -> None:
    assert "no host" in refused("redis+cluster://h1:7000,,h2:7001")


def test_a_database_that_is_not_a_number_is_refused() -> None:
    assert "database" in refused("redis://h1/zero")


def test_query_parameters_on_a_tcp_url_are_refused() -> None:
    assert "no ?query" in refused("redis://h1/0?ssl_cert_reqs=none")


def test_unix_url_with_a_host_is_refused() -> None:
    assert "no host" in refused("unix://localhost/run/redis.sock")


# --- credentials ------------------------------------------------------------------------------------------

def test_password_comes_from_its_file_without_the_trailing_newline(tmp_path: Path) -> None:
    target = settings("redis://h1/0", PASSWORD_FILE=secret(tmp_path, "hunter2\n")).target
    assert target is not None and target.password == "hunter2"


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    assert "chmod 600" in refused("redis://h1/0", PASSWORD_FILE=secret(tmp_path, "hunter2", mode=0o644))


def test_a_missing_password_file_is_refused(tmp_path: Path) -> None:
    assert "does not exist" in refused("redis://h1/0", PASSWORD_FILE=str(tmp_path / "nope"))


@pytest.mark.parametrize("content", ["", "\n", "two\nlines\n"])
def test_a_password_file_must_hold_one_line(tmp_path: Path, content: str) -> None:
    assert "one line" in refused("redis://h1/0", PASSWORD_FILE=secret(tmp_path, content))


def test_a_password_both_in_the_url_and_in_a_file_is_refused(tmp_path: Path) -> None:
    assert "given twice" in refused("redis://:pw@h1/0", PASSWORD_FILE=secret(tmp_path, "pw"))


def test_a_username_both_in_the_url_and_in_a_setting_is_refused() -> None:
    assert "given twice" in refused("redis://app:pw@h1/0", USERNAME="app")


def test_acl_username_comes_from_its_setting(tmp_path: Path) -> None:
    s = settings("rediss://h1/0", USERNAME="tally", PASSWORD_FILE=secret(tmp_path, "pw")).target
    assert s is not None and (s.username, s.password) == ("tally", "pw")


def test_sentinel_credentials_are_separate_from_the_data_nodes(tmp_path: Path) -> None:
    s = settings("redis+sentinel://h1/m", SENTINEL_USERNAME="watcher",
                 SENTINEL_PASSWORD_FILE=secret(tmp_path, "spw", name="sentinel.password"),
                 PASSWORD_FILE=secret(tmp_path, "dpw"))
    assert s.target is not None and (s.sentinel_username, s.sentinel_password, s.target.password) == (
        "watcher", "spw", "dpw")


def test_sentinel_credentials_with_another_topology_are_refused() -> None:
    assert "only to a redis+sentinel://" in refused("redis+cluster://h1", SENTINEL_USERNAME="watcher")


def test_passwords_never_appear_in_repr_or_the_redacted_url(tmp_path: Path) -> None:
    s = settings("redis://app:topsecret@h1/0")
    assert "topsecret" not in repr(s) and "topsecret" not in s.redacted_url
    assert s.redacted_url == "redis://app:***@h1:6379/0"


# --- TLS ------------------------------------------------------------------------------------------------------

def test_tls_files_are_read_for_a_tls_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("ca")
    s = settings("rediss://h1/0", TLS_CA_FILE=str(ca), TLS_CERT_FILE=str(ca),
                 TLS_KEY_FILE=secret(tmp_path, "key", name="client.key"))
    assert (s.tls_ca_file, s.tls_cert_file, s.tls_key_file) == (ca, ca, tmp_path / "client.key")


def test_tls_files_with_a_plain_url_are_refused(tmp_path: Path) -> None:
    assert "does not use TLS" in refused("redis://h1/0", TLS_CA_FILE=str(tmp_path))


def test_a_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("c")
    assert "go together" in refused("rediss://h1/0", TLS_CERT_FILE=str(tmp_path / "c.pem"))


def test_a_client_key_others_can_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("c")
    key = secret(tmp_path, "k", mode=0o640, name="c.key")
    assert "chmod 600" in refused("rediss://h1/0", TLS_CERT_FILE=str(tmp_path / "c.pem"), TLS_KEY_FILE=key)


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    assert "not a readable file" in refused("rediss://h1/0", TLS_CA_FILE=str(tmp_path / "none.pem"))


# --- timeouts, pool, durability --------------------------------------------------------------------------------

def test_timeouts_and_pool_size_are_read_in_milliseconds_and_connections() -> None:
    s = settings("redis://h1/0", CONNECT_TIMEOUT_MS="250", COMMAND_TIMEOUT_MS="750", POOL_SIZE="8")
    assert (s.connect_timeout_ms, s.command_timeout_ms, s.pool_size) == (250, 750, 8)


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "soon", "60001"])
def test_a_bad_timeout_is_refused(value: str) -> None:
    assert "TALLY_REDIS_COMMAND_TIMEOUT_MS" in refused("redis://h1/0", COMMAND_TIMEOUT_MS=value)


def test_a_pool_of_no_connections_is_refused() -> None:
    assert "TALLY_REDIS_POOL_SIZE" in refused("redis://h1/0", POOL_SIZE="0")


@pytest.mark.parametrize(("url", "expected"), [("redis://h1/0", 0), ("redis+sentinel://h1/m", 1),
                                               ("redis+cluster://h1", 1)])
def test_replicas_required_by_default_where_a_failover_can_promote_one(url: str, expected: int) -> None:
    assert settings(url).min_replicas == expected


def test_min_replicas_can_be_set() -> None:
    assert settings("redis+cluster://h1", MIN_REPLICAS="0").min_replicas == 0


def test_replica_ack_timeout_must_be_shorter_than_the_command_timeout() -> None:
    message = refused("redis+sentinel://h1/m", REPLICA_ACK_TIMEOUT_MS="2000", COMMAND_TIMEOUT_MS="2000")
    assert "less than TALLY_REDIS_COMMAND_TIMEOUT_MS" in message


# --- the list of names --------------------------------------------------------------------------------------

def test_names_list_every_setting_the_module_reads() -> None:
    source = Path(redis_settings.__file__).read_text()
    assert set(re.findall(r"TALLY_REDIS_[A-Z_]+[A-Z]", source)) == set(NAMES)


def test_config_hands_the_same_settings_on(tmp_path: Path) -> None:
    s = settings("redis+sentinel://h1/m", PASSWORD_FILE=secret(tmp_path, "pw"), POOL_SIZE="3")
    assert RedisSettings.from_env(s.config()) == s


def test_settings_from_env_refuses_a_bad_redis_url() -> None:
    with pytest.raises(ConfigurationError, match="TALLY_REDIS_URL must start with"):
        Settings.from_env({"TALLY_REDIS_URL": "memcached://h1"})


# --- properties of the URL parser ------------------------------------------------------------------------------

hostnames = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True)
ipv6 = st.ip_addresses(v=6).map(str)
endpoints = st.tuples(st.one_of(hostnames, ipv6), st.integers(1, 65535))
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def redis_urls(draw: st.DrawFn) -> RedisUrl:
    topology = draw(st.sampled_from(Topology))
    username = draw(st.none() | text)
    password = draw(st.none() | text)
    if topology is Topology.STANDALONE and draw(st.booleans()):
        return RedisUrl(topology, False, unix_path="/" + draw(st.from_regex(r"[a-z0-9_./-]{1,20}", fullmatch=True)),
                        db=draw(st.integers(0, 15)), username=username, password=password)
    hosts = tuple(draw(st.lists(endpoints, min_size=1, max_size=1 if topology is Topology.STANDALONE else 5)))
    return RedisUrl(topology, draw(st.booleans()), hosts, db=0 if topology is Topology.CLUSTER
                    else draw(st.integers(0, 15)),
                    master_name=draw(st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True))
                    if topology is Topology.SENTINEL else None, username=username, password=password)


@given(redis_urls())
def test_every_url_parses_back_to_what_it_says(parsed: RedisUrl) -> None:
    assert parse_url(format_url(parsed)) == parsed


@given(redis_urls())
def test_the_redacted_url_never_holds_the_password(parsed: RedisUrl) -> None:
    redacted = format_url(parsed, with_password=False)
    if parsed.password:
        assert parse_url(redacted).password in (None, "***")


@given(st.text(max_size=60) | st.sampled_from(list(redis_settings.SCHEMES)).flatmap(
    lambda s: st.text(max_size=60).map(lambda rest: f"{s}://{rest}")))
def test_any_text_is_a_url_or_a_configuration_error(url: str) -> None:
    try:
        parse_url(url)
    except ConfigurationError:
        pass
