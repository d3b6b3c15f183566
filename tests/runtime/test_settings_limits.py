"""Request size and rate limits come from the environment once, validated like every other setting."""

from __future__ import annotations

import pytest

from tally_protocol.errors import ConfigurationError
from tally_runtime.settings import Settings


def test_size_and_rate_limits_have_defaults() -> None:
    s = Settings.from_env({})
    assert (s.kdc_max_body_bytes, s.max_body_bytes) == (64 * 1024, 10 * 1024 * 1024)
    assert (s.rate_limit_requests, s.rate_limit_window_s) == (30, 1)
    assert (s.as_rate_limit, s.tgs_rate_limit, s.principal_rate_window_s) == (20, 200, 10)


def test_size_and_rate_limits_are_read_from_the_environment() -> None:
    s = Settings.from_env({"TALLY_KDC_MAX_BODY_BYTES": "2048", "TALLY_MAX_BODY_BYTES": "4096",
                           "TALLY_RATE_LIMIT_REQUESTS": "7", "TALLY_RATE_LIMIT_WINDOW_S": "2",
                           "TALLY_AS_RATE_LIMIT": "3", "TALLY_TGS_RATE_LIMIT": "9",
                           "TALLY_PRINCIPAL_RATE_WINDOW_S": "60"})
    assert (s.kdc_max_body_bytes, s.max_body_bytes) == (2048, 4096)
    assert (s.rate_limit_requests, s.rate_limit_window_s) == (7, 2)
    assert (s.as_rate_limit, s.tgs_rate_limit, s.principal_rate_window_s) == (3, 9, 60)


@pytest.mark.parametrize(("name", "value"), [("TALLY_AS_RATE_LIMIT", "0"), ("TALLY_TGS_RATE_LIMIT", "many"),
                                             ("TALLY_KDC_MAX_BODY_BYTES", "10"),
                                             ("TALLY_PRINCIPAL_RATE_WINDOW_S", "-1")])
def test_a_limit_out_of_range_is_a_clear_configuration_error(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})
