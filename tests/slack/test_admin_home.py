"""An admin's Home tab says which groups could not be read and which roles their groups leave short of
approvers (the roster as resolved now); nobody else's does."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.domain.ids import SlackUserId
from bot.domain.roster import Roster
from tests.fakes import ALICE, BOB, roster_with


def _shown(text: str) -> str:
    return text.replace("\n", " ")


# --- the admins' Home tab -------------------------------------------------------------------------


@pytest.fixture
def roster() -> Roster:
    roster = roster_with(groups={"platform": {"okta_group": "00g1platform0AB"}},
                         roles={"admin": {"approvers": ["sre", "platform"]}})  # fmt: skip
    resolved = dataclasses.replace(
        roster,
        groups={**roster.groups, "sre": (SlackUserId(BOB),), "platform": ()},
        group_problems={"platform": "The group platform could not be read from the Okta group 00g1platform0AB "
                        "(Okta has no such group, 404 E0000007), so nobody in it may act now."},
    )  # fmt: skip
    return resolved


def test_an_admins_home_tab_names_unreadable_groups_and_roles_short_of_approvers(harness: Any) -> None:
    harness.open_home(BOB)  # BOB is in sre, the admins' group
    home = _shown(harness.slack.render_text(harness.slack.home_view(BOB)))
    assert "Needs an admin" in home
    assert "could not be read from the Okta group 00g1platform0AB (Okta has no such group, 404 E0000007)" in home
    assert "admin needs 2 approvals but its approver groups (sre, platform) hold 1 person now" in home, home


def test_someone_who_is_no_admin_is_not_shown_them(harness: Any) -> None:
    harness.open_home(ALICE)
    home = harness.slack.render_text(harness.slack.home_view(ALICE))
    assert "Needs an admin" not in home
    assert "Your active grants" in home
