"""Units of the inference app that need no registry: the rate limiter, `/invocations` payload parsing and
the serving configuration."""

from __future__ import annotations

import pandas as pd
import pytest

from inference.config import ServingConfig
from inference.payloads import PayloadError, parse_payload
from inference.ratelimit import RateLimiter

FEATURES = ("a", "b", "mcc_group")


def test_token_bucket_allows_the_burst_then_refills_at_the_rate():
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5)  # one token comes back every 1 / rate seconds
    assert RateLimiter.retry_after_header(wait) == "1"
    assert limiter.take("other") == 0.0  # buckets are per key
    now[0] += 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("k") > 0
    now[0] += 60
    assert [limiter.take("k") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refills only up to the burst
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"instances": [{"a": 1, "b": 2.5, "mcc_group": "grocery"}]}', "application/json"),
        (b'[{"a": 1, "b": 2.5, "mcc_group": "grocery"}]', "application/json; charset=utf-8"),
        (b'{"instances": [[1, 2.5, "grocery"]]}', "application/json"),
        (b'{"columns": ["a", "b", "mcc_group"], "data": [[1, 2.5, "grocery"]]}', "application/json"),
        (b"1,2.5,grocery\n", "text/csv"),
        (b"a,b,mcc_group\n1,2.5,grocery\n", "text/csv"),
        (b"b,a,mcc_group\n2.5,1,grocery\n", "text/csv"),
    ],
)
def test_payload_shapes_give_the_same_rows(body, content_type):
    frame = parse_payload(body, content_type, FEATURES)
    expected = pd.DataFrame([{"a": 1.0, "b": 2.5, "mcc_group": "grocery"}])
    pd.testing.assert_frame_equal(frame[list(FEATURES)].astype({"a": float}), expected, check_dtype=False)


def test_csv_blank_cells_are_missing_values():
    frame = parse_payload(b"1,,grocery\n", "text/csv", FEATURES)
    assert frame["b"].isna().all()


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{", "application/json", "not valid JSON"),
        (b'{"rows": []}', "application/json", "expected"),
        (b'{"instances": []}', "application/json", "no rows"),
        (b'{"instances": [[1, 2]]}', "application/json", "3 values"),
        (b'{"instances": [[1, 2, 3], {"a": 1}]}', "application/json", "all be objects"),
        (b"", "text/csv", "no rows"),
        (b"a,b,mcc_group\n1,2\n", "text/csv", "one value per header"),
        (b"<x/>", "application/xml", "content type"),
    ],
)
def test_bad_payloads_are_named_without_values(body, content_type, message):
    with pytest.raises(PayloadError, match=message):
        parse_payload(body, content_type, FEATURES)


def test_config_reads_serve_settings_when_present():
    class SettingsWithServeFields:  # settings gain `serve_*` fields later; until then the defaults hold
        serve_fraud_threshold = 0.7
        serve_rate_burst = 5

    config = ServingConfig.from_settings(SettingsWithServeFields(), reload_seconds=0)  # type: ignore[arg-type]
    assert (config.fraud_threshold, config.rate_burst, config.reload_seconds) == (0.7, 5, 0)
    assert config.fraud_model == "cdp-fraud"
    from cdp.settings import Settings

    assert ServingConfig.from_settings(Settings()) == ServingConfig()
