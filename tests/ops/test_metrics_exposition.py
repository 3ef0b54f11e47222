"""``/metrics`` through prometheus_client: the installation's counts from Redis in the format the
scraper asks for, beside the answering process's own standard metrics."""

from __future__ import annotations

import fakeredis

from bot.metrics import Metrics

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _counted() -> Metrics:
    metrics = Metrics(fakeredis.FakeRedis(decode_responses=True), "bench")
    metrics.inc("breakglass_requests_total", 'outcome="granted"')
    metrics.inc("breakglass_requests_total", 'outcome="granted"')
    metrics.inc("breakglass_refusals_total", 'action="say \\"please\\""')
    metrics.inc("breakglass_api_errors_total", 'system="slack",kind="ratelimited"')
    metrics.observe("breakglass_revoke_lateness_seconds", 0.3)
    return metrics


def test_a_plain_scrape_gets_the_text_format_with_the_installations_counts_and_process_metrics() -> None:
    body, content_type = _counted().exposition(None)
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE breakglass_requests_total counter" in text
    assert 'breakglass_requests_total{outcome="granted"} 2.0' in text
    assert 'breakglass_refusals_total{action="say \\"please\\""} 1.0' in text
    assert 'breakglass_api_errors_total{kind="ratelimited",system="slack"} 1.0' in text
    assert 'breakglass_revoke_lateness_seconds_bucket{le="0.5"} 1.0' in text
    assert 'breakglass_revoke_lateness_seconds_bucket{le="0.25"} 0.0' in text
    assert "breakglass_active_grants 0.0" in text
    assert "process_cpu_seconds_total" in text
    assert "python_info" in text


def test_a_scraper_that_asks_for_openmetrics_gets_openmetrics() -> None:
    body, content_type = _counted().exposition(OPENMETRICS)
    text = body.decode()
    assert content_type.startswith("application/openmetrics-text")
    assert 'breakglass_requests_total{outcome="granted"} 2.0' in text
    assert text.endswith("# EOF\n")
