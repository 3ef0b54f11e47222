"""``breakglass report`` end to end in-process: read through the store from a real Redis, verify the
chain, print Markdown or write the HTML page; and the page as a real browser renders it."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from bot.cli import main
from bot.store import AuditLog, Draft
from tests.chromium import chromium_binary
from tests.conftest import CHAIN_KEY, EXAMPLE_ROSTER, TEST_SIGNING_KEY
from tests.reporting.stories import Trail, full_story
from tests.reporting.test_period_report import _period

PREFIX = "bg-report-test"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, real_redis: redis.Redis) -> redis.Redis:
    monkeypatch.setenv("BREAKGLASS_REDIS_URL", redis_url)
    monkeypatch.setenv("BREAKGLASS_KEY_PREFIX", PREFIX)
    monkeypatch.setenv("BREAKGLASS_ROSTER", str(EXAMPLE_ROSTER))
    monkeypatch.setenv("BREAKGLASS_SIGNING_KEY", TEST_SIGNING_KEY)
    return real_redis


def _store(client: redis.Redis, *trails: Trail) -> AuditLog:
    """Append each trail's entries through the log itself, at the instants the trail gives them."""
    at = [datetime.now(UTC)]
    log = AuditLog(client, lambda: at[0], prefix=PREFIX, out=open(os.devnull, "w"), key=CHAIN_KEY)  # noqa: SIM115
    for trail in trails:
        for entry in trail.entries:
            at[0] = datetime.fromisoformat(entry.at.replace("Z", "+00:00"))
            log.append(Draft(entry.event, entry.actor, entry.request_id, entry.details))
    return log


def test_report_of_one_request_prints_markdown_with_the_chain_verified(
    env: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(env, full_story())

    assert main(["report", "bg-7k2qxm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Post-incident report: BG-7K2QXM\n")
    assert "The audit chain verifies: 10 entries intact" in out


def test_report_of_a_period_writes_one_html_page(
    env: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(env, _period())
    page = tmp_path / "period.html"

    assert main(["report", "--since", "3650d", "--html", str(page)]) == 0
    assert f"report written to {page}" in capsys.readouterr().out
    assert "Approved automatically by a rule: 1 (BG-CCCCCC)." in page.read_text()


def test_report_refuses_an_unknown_id_or_no_subject(env: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "BG-7K2QXM"]) == 1
    assert "the audit log holds nothing for BG-7K2QXM" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "give a request id" in capsys.readouterr().err
    assert main(["report", "nope"]) == 2


def test_report_on_a_broken_chain_says_so_and_fails(env: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    log = _store(env, full_story())
    env.xdel(log.stream_key, "3-0")

    assert main(["report", "BG-7K2QXM"]) == 1
    captured = capsys.readouterr()
    assert "**The audit chain is broken at entry 3" in captured.out
    assert "does not verify" in captured.err


def _render(binary: str, page: Path, screenshot: Path) -> str:
    """Chromium's log while it renders ``page`` into ``screenshot``; console messages appear in it."""
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2400",
            f"--screenshot={screenshot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=page.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


@pytest.mark.slow
def test_the_html_reports_render_in_chromium_without_console_errors(env: redis.Redis, tmp_path: Path) -> None:
    binary = chromium_binary()
    _store(env, full_story(), _period())
    pages = {"request": tmp_path / "request.html", "period": tmp_path / "period.html"}
    assert main(["report", "BG-7K2QXM", "--html", str(pages["request"])]) == 0
    assert main(["report", "--since", "3650d", "--html", str(pages["period"])]) == 0

    # First prove the check can fail: a page that fetches and scripts is reported in the console.
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>'
    )
    assert ":CONSOLE" in _render(binary, bad, tmp_path / "bad.png")

    for name, page in pages.items():
        screenshot = tmp_path / f"{name}.png"  # kept in pytest's tmp dir as the test's artifact
        log = _render(binary, page, screenshot)
        assert ":CONSOLE" not in log, log
        deadline = time.monotonic() + 30
        while not screenshot.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
