"""The worker's parts as ``build_worker_context`` wires them from the settings."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings
from tests.domain.test_settings import MINIMAL
from workers.context import kube_request_timeout


def test_kube_calls_wait_ten_seconds_for_an_answer_unless_told() -> None:
    assert kube_request_timeout(load_settings(MINIMAL)) == (3.0, 10.0)


def test_a_short_kube_timeout_also_bounds_connecting() -> None:
    assert kube_request_timeout(load_settings({**MINIMAL, "BREAKGLASS_KUBE_TIMEOUT": "2s"})) == (2.0, 2.0)


def test_a_malformed_kube_timeout_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^BREAKGLASS_KUBE_TIMEOUT: "):
        load_settings({**MINIMAL, "BREAKGLASS_KUBE_TIMEOUT": "soon"})
