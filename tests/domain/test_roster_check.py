"""The roster check: every problem reported, each with its exact message, place and line.

Most cases edit one line of the contract's example roster in place, so the line numbers of the
example (``deploy/roster.example.yaml``) stay valid in the expectations.
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.roster import _TOP_KEYS, Problem, RosterError, load_roster_file, parse_roster, parse_roster_bytes
from tests.conftest import EXAMPLE_ROSTER

EXAMPLE = EXAMPLE_ROSTER.read_text(encoding="utf-8")


def edited(lines: dict[int, str]) -> str:
    """The example with the given 1-based lines replaced (a replacement may span several lines)."""
    rows = EXAMPLE.splitlines()
    for number, text in lines.items():
        rows[number - 1] = text
    return "\n".join(rows) + "\n"


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(RosterError) as raised:
        parse_roster(text)
    return [(p.line, p.place, p.message) for p in raised.value.problems]


# --- accepted ---------------------------------------------------------------------------------


def test_example_roster_is_accepted_as_is() -> None:
    roster = parse_roster(EXAMPLE)
    assert roster.workspace.team_id == "T0000000001"
    assert roster.workspace.enterprise_id is None
    assert roster.mfa == "slack_enforced"
    assert roster.incident_channel == "C0000INCIDENT"
    assert roster.request_timeout == timedelta(minutes=30)
    assert roster.reminder_before == timedelta(minutes=10)
    assert set(roster.clusters) == {"prod", "staging"}
    assert roster.clusters["prod"].credentials == "user"
    assert roster.roles["view"].min_duration == timedelta(minutes=5)  # the global default
    assert roster.roles["cluster-admin"].min_duration == timedelta(minutes=15)  # its own
    assert roster.roles["admin"].approvals == 2
    assert roster.roles["admin"].approvers == ("sre",)
    assert roster.people["U00000CAROL"].kube_groups == ("oncall",)
    assert roster.entitlements[0].namespaces == ("payments", "payments-*")
    assert roster.entitlements[1].namespaces is None
    assert roster.summary() == "3 people, 2 groups, 3 roles, 2 clusters, 2 entitlements"


def test_optional_settings_take_their_defaults() -> None:
    roster = parse_roster(edited({6: "# no request_timeout", 7: "# no reminder_before", 8: "# no min_duration"}))
    assert roster.request_timeout == timedelta(minutes=30)
    assert roster.reminder_before == timedelta(minutes=10)
    assert roster.roles["admin"].min_duration == timedelta(minutes=5)


def test_enterprise_id_alone_is_accepted() -> None:
    roster = parse_roster(edited({2: "  enterprise_id: E00000001"}))
    assert roster.workspace.enterprise_id == "E00000001"
    assert roster.workspace.team_id is None


# --- one kind of problem each ---------------------------------------------------------------


def test_unknown_group_in_approvers() -> None:
    assert problems(edited({22: "    approvers: [sre2]"})) == [
        (22, "roles.view.approvers[0]", "unknown group 'sre2'"),
    ]


def test_unknown_group_in_entitlement() -> None:
    assert problems(edited({44: "  - group: payment-devs"})) == [
        (44, "entitlements[0].group", "unknown group 'payment-devs'"),
    ]


def test_unknown_group_in_admins() -> None:
    assert problems(edited({55: "admins: [platform]"})) == [
        (55, "admins[0]", "unknown group 'platform'"),
    ]


def test_unknown_role_in_entitlement() -> None:
    assert problems(edited({45: "    roles: [viewer, admin]"})) == [
        (45, "entitlements[0].roles[0]", "unknown role 'viewer'"),
    ]


def test_unknown_cluster_in_entitlement() -> None:
    assert problems(edited({46: "    clusters: [prod, stagin]"})) == [
        (46, "entitlements[0].clusters[1]", "unknown cluster 'stagin'"),
    ]


def test_person_without_kube_user() -> None:
    # Reported once, where the entry is; the groups naming that person are not blamed for it.
    assert problems(edited({40: "  U000000ALICE: {kube_groups: [payments]}"})) == [
        (40, "people.U000000ALICE", "has no kube_user"),
    ]


def test_group_member_missing_from_people() -> None:
    assert problems(edited({37: "  sre: [U0000000BOB, U00000CAROL, U00000000DAN]"})) == [
        (37, "groups.sre[2]", "'U00000000DAN' is not in people (every member needs a kube_user)"),
    ]


def test_role_min_duration_above_its_max_duration() -> None:
    assert problems(edited({33: "    min_duration: 2h"})) == [
        (33, "roles.cluster-admin.min_duration", "min_duration 2h is above max_duration 1h"),
    ]


def test_global_min_duration_above_a_role_max_duration_points_at_the_role() -> None:
    # admin (max 1h) inherits the global minimum; cluster-admin sets its own 15m and is fine.
    assert problems(edited({8: "min_duration: 2h"})) == [
        (26, "roles.admin.max_duration", "min_duration 2h is above max_duration 1h"),
    ]


def test_duplicate_key() -> None:
    assert problems(edited({3: "  team_id: T0000000002"})) == [
        (3, "workspace.team_id", "duplicate key 'team_id'"),
    ]


def test_duplicate_top_level_section() -> None:
    assert problems(EXAMPLE + "mfa: has_2fa\n") == [
        (EXAMPLE.count("\n") + 1, "mfa", "duplicate key 'mfa'"),  # the line appended
    ]


def test_unknown_key_in_a_role_is_a_problem_not_ignored() -> None:
    # A misspelt 'approvals' silently ignored would change who gets production access.
    # A one-letter slip is one problem naming the key meant, not an unknown key plus a missing one.
    assert problems(edited({21: "    aprovals: 1"})) == [
        (21, "roles.view.aprovals", "unknown key 'aprovals'; did you mean 'approvals'?"),
    ]
    assert problems(edited({21: "    sign_off: 1"})) == [
        (17, "roles.view.approvals", "is required"),
        (21, "roles.view.sign_off", "unknown key 'sign_off' (allowed: approvals, approvers, auto_approve, cluster_role, "
         "escalate_after, escalate_service, idle_timeout, max_duration, min_duration, scope, step_up, ticket)"),
    ]  # fmt: skip


def test_unknown_key_in_workspace() -> None:
    assert problems(edited({3: "  enterprize_id: E00000001"})) == [
        (3, "workspace.enterprize_id", "unknown key 'enterprize_id'; did you mean 'enterprise_id'?"),
    ]


def test_unknown_top_level_key_names_its_place_and_line() -> None:
    assert problems(edited({6: "request_timout: 30m"})) == [
        (6, "request_timout", "unknown key 'request_timout'; did you mean 'request_timeout'?"),
    ]  # fmt: skip


def test_missing_required_top_level_key() -> None:
    assert problems(edited({5: "# no incident_channel"})) == [
        (1, "incident_channel", "is required"),  # a missing key points at its parent: the file
    ]


def test_bad_duration() -> None:
    assert problems(edited({20: "    max_duration: forever"})) == [
        (
            20,
            "roles.view.max_duration",
            "'forever' is not a duration; write it like 90s, 15m, 2h, 1h30m, 60min or 1 hour",
        ),
    ]


def test_duration_written_as_a_bare_number() -> None:
    assert problems(edited({6: "request_timeout: 30"})) == [
        (6, "request_timeout", "must be a duration like 15m or 1h30m, not a number"),
    ]


def test_bad_scope() -> None:
    assert problems(edited({19: "    scope: global"})) == [
        (19, "roles.view.scope", "'global' is not one of namespace, cluster"),
    ]


def test_bad_credentials() -> None:
    assert problems(edited({12: "    credentials: password"})) == [
        (12, "clusters.prod.credentials", "'password' is not one of user, token"),
    ]


def test_bad_mfa_mode() -> None:
    assert problems(edited({4: "mfa: sms"})) == [
        (4, "mfa", "'sms' is not one of slack_enforced, has_2fa, oidc"),
    ]


def test_negative_approvals() -> None:
    assert problems(edited({21: "    approvals: -1"})) == [
        (21, "roles.view.approvals", "must be a whole number of 0 or more, not -1"),
    ]


def test_approvals_written_as_a_boolean() -> None:
    assert problems(edited({21: "    approvals: yes"})) == [
        (21, "roles.view.approvals", "must be a whole number of 0 or more, not True"),
    ]


def test_more_approvals_than_eligible_people() -> None:
    assert problems(edited({27: "    approvals: 3"})) == [
        (27, "roles.admin.approvals", "needs 3 approvals but its approver groups hold only 2 people"),
    ]


def test_approvals_with_an_empty_approver_list() -> None:
    # Nobody could ever approve such a role; it must not pass the check.
    assert problems(edited({22: "    approvers: []"})) == [
        (21, "roles.view.approvals", "needs 1 approvals but its approver groups hold only 0 people"),
    ]


def test_approvers_not_written_as_a_list() -> None:
    assert problems(edited({22: "    approvers: sre"})) == [
        (22, "roles.view.approvers", "must be a list, not a string"),
    ]


def test_approvals_without_approvers() -> None:
    assert problems(edited({22: "    # no approvers"})) == [
        (17, "roles.view.approvers", "is required when approvals is above 0"),
    ]


def test_self_service_role_without_approvers() -> None:
    assert problems(edited({21: "    approvals: 0", 22: "    # no approvers"})) == [
        (17, "roles.view.approvers", "a self-service role still needs approvers: they are told and owe a review"),
    ]


def test_self_service_role_whose_approver_groups_hold_no_one() -> None:
    # Nobody would be told of the grant, and nobody could close the review it owes.
    assert problems(
        edited({21: "    approvals: 0", 22: "    approvers: [payments-devs]", 38: "  payments-devs: []"})
    ) == [
        (
            22,
            "roles.view.approvers",
            "a self-service role's approver groups hold no one: nobody would be told or close its review",
        ),
    ]


def test_bad_slack_user_id_as_a_person() -> None:
    assert problems(edited({38: "  payments-devs: [alice]", 40: "  alice: {kube_user: alice@example.com}"})) == [
        (40, "people.alice", "'alice' is not a Slack user id (U… or W…)"),
    ]


def test_bad_slack_team_id() -> None:
    assert problems(edited({2: "  team_id: acme"})) == [
        (2, "workspace.team_id", "'acme' is not a Slack team id"),
    ]


def test_bad_slack_channel_id() -> None:
    assert problems(edited({5: 'incident_channel: "#incidents"'})) == [
        (5, "incident_channel", "'#incidents' is not a Slack channel id"),
    ]


def test_workspace_without_any_id() -> None:
    assert problems(edited({2: "  {}"})) == [
        (1, "workspace", "needs team_id (or enterprise_id for Enterprise Grid)"),
    ]


def test_an_unclosed_bracket_is_blamed_on_the_line_that_opened_it() -> None:
    assert problems(edited({45: "    roles: [view, admin"})) == [
        (45, "(file)", "a '[' opened on this line is not closed by ']' (or a ',' is missing)"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('incident_channel: "C1\nmfa: has_2fa\n', 1, "a quote opened on this line is never closed"),
        (
            "workspace: {team_id: T1\nmfa: has_2fa\n",
            1,
            "a '{' opened on this line is not closed by '}' (or a ',' is missing)",
        ),
        ("workspace:\n\tteam_id: T1\n", 2, "a tab in the indentation; YAML indents with spaces"),
        ("workspace:\n  team_id: T1\n mfa: x\n", 3, "the indentation does not line up with the lines above"),
        (
            "roles:\n  admin\n    scope: namespace\n",
            3,
            "a ':' where none may be: quote a value holding ': ', or a ':' missing at the end of line 2",
        ),
        ("mfa: has_2fa\nreason: \x07\n", 2, "holds a control character (#x0007); a roster is plain text"),
    ],
)
def test_yaml_errors_are_said_in_plain_words_on_the_line_to_fix(text: str, line: int, message: str) -> None:
    assert problems(text) == [(line, "(file)", message)]


def test_an_empty_roster_is_one_problem() -> None:
    assert problems("") == [(1, "(file)", "is empty; start from deploy/roster.example.yaml")]
    assert problems("# nothing yet\n") == [(1, "(file)", "is empty; start from deploy/roster.example.yaml")]


def test_a_binary_file_is_one_problem() -> None:
    with pytest.raises(RosterError) as raised:
        parse_roster_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    assert [str(p) for p in raised.value.problems] == ["line 1: (file): is a binary file, not a YAML roster"]


def test_a_latin_1_byte_is_one_problem_at_its_line_and_column() -> None:
    with pytest.raises(RosterError) as raised:
        parse_roster_bytes(b"mfa: has_2fa\nincident_channel: caf\xe9\n")
    assert [str(p) for p in raised.value.problems] == [
        "line 2: (file): byte 0xe9 at column 22 is not UTF-8; save the file as UTF-8"
    ]


def test_system_masters_in_kube_groups() -> None:
    line = '  U00000CAROL: {kube_user: carol@example.com, kube_groups: [oncall, "system:masters"]}'
    assert problems(edited({42: line})) == [
        (42, "people.U00000CAROL.kube_groups", "'system:masters' would bypass RBAC entirely"),
    ]


def test_reminder_before_not_shorter_than_the_shortest_max_duration() -> None:
    assert problems(edited({7: "reminder_before: 1h"})) == [
        (7, "reminder_before", "1h is not shorter than the shortest max_duration (1h)"),
    ]


def test_empty_clusters() -> None:
    no_clusters = {9: "clusters: {}", **{n: "#" for n in range(10, 16)}}
    assert problems(edited(no_clusters)) == [
        (9, "clusters", "names no cluster"),
        (46, "entitlements[0].clusters[0]", "unknown cluster 'prod'"),
        (46, "entitlements[0].clusters[1]", "unknown cluster 'staging'"),
        (50, "entitlements[1].clusters[0]", "unknown cluster 'prod'"),
        (50, "entitlements[1].clusters[1]", "unknown cluster 'staging'"),
    ]


def test_bad_namespace_glob() -> None:
    assert problems(edited({47: '    namespaces: [payments, "Payments/*"]'})) == [
        (47, "entitlements[0].namespaces[1]", "'Payments/*' is not a namespace name or glob"),
    ]


def test_cluster_scoped_role_in_an_entitlement_limited_to_namespaces() -> None:
    # Policy never grants a cluster-wide binding through such an entitlement, so the line is dead.
    assert problems(edited({45: "    roles: [view, cluster-admin]"})) == [
        (
            45,
            "entitlements[0].roles[1]",
            "'cluster-admin' is cluster-scoped, so an entitlement limited to namespaces can never grant it",
        ),
    ]


def test_bad_cluster_name() -> None:
    edits = {13: "  Staging:", 46: "    clusters: [prod, Staging]", 50: "    clusters: [prod, Staging]"}
    assert problems(edited(edits)) == [
        (13, "clusters.Staging", "cluster name 'Staging' must be a lower-case DNS label"),
    ]


# --- everything at once -----------------------------------------------------------------------


def test_unknown_group_person_without_kube_user_and_min_above_max_are_all_named() -> None:
    text = edited(
        {
            22: "    approvers: [sre, oncall]",
            41: "  U0000000BOB: {kube_groups: [sre]}",
            33: "    min_duration: 90m",
        }
    )
    with pytest.raises(RosterError) as raised:
        parse_roster(text)
    found = [(p.line, p.place, p.message) for p in raised.value.problems]
    assert (22, "roles.view.approvers[1]", "unknown group 'oncall'") in found
    assert (41, "people.U0000000BOB", "has no kube_user") in found
    assert (33, "roles.cluster-admin.min_duration", "min_duration 1h30m is above max_duration 1h") in found
    # In file order, and the error text names every one of them.
    assert [p.line for p in raised.value.problems] == sorted(p.line or 0 for p in raised.value.problems)
    message = str(raised.value)
    assert "line 22: roles.view.approvers[1]: unknown group 'oncall'" in message
    assert "line 41: people.U0000000BOB: has no kube_user" in message
    assert "line 33: roles.cluster-admin.min_duration: min_duration 1h30m is above max_duration 1h" in message


def test_problem_reads_as_line_place_message() -> None:
    assert str(Problem("roles.admin.approvers[0]", "unknown group 'sre2'", 28)) == (
        "line 28: roles.admin.approvers[0]: unknown group 'sre2'"
    )
    assert str(Problem("(file)", "cannot read roster.yaml")) == "(file): cannot read roster.yaml"


def test_load_roster_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert load_roster_file(path) == parse_roster(EXAMPLE)


def test_load_roster_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RosterError) as raised:
        load_roster_file(missing)
    assert [(p.place, p.message) for p in raised.value.problems] == [
        ("(file)", f"cannot read {missing}: No such file or directory"),
    ]


def test_an_idle_timeout_not_shorter_than_max_duration_is_refused() -> None:
    assert problems(edited({22: "    approvers: [sre]\n    idle_timeout: 4h"})) == [
        (
            23,
            "roles.view.idle_timeout",
            "idle_timeout 4h is not shorter than max_duration 4h, so it could never end a grant early",
        ),
    ]
    roster = parse_roster(edited({22: "    approvers: [sre]\n    idle_timeout: 30m"}))
    assert roster.roles["view"].idle_timeout == timedelta(minutes=30)
    assert roster.roles["admin"].idle_timeout is None


def test_request_channels_and_quotas_are_read_with_small_defaults() -> None:
    roster = parse_roster(EXAMPLE)
    assert (roster.request_channels, roster.max_pending_requests, roster.max_pending_extensions) == ((), 3, 2)
    roster = parse_roster(
        edited({52: "request_channels: [C0000WARROOM]", 53: "max_pending_requests: 5", 54: "max_pending_extensions: 2"})
    )
    assert (roster.request_channels, roster.max_pending_requests, roster.max_pending_extensions) == (
        ("C0000WARROOM",),
        5,
        2,
    )


def test_bad_request_channels_and_quotas_are_problems() -> None:
    found = problems(
        edited({52: "request_channels: [general]", 53: "max_pending_requests: 0", 54: "max_pending_extensions: x"})
    )
    assert [(place, message) for _, place, message in found] == [
        ("request_channels[0]", "'general' is not a Slack channel id"),
        ("max_pending_requests", "must be a whole number from 1 to 100, not 0"),
        ("max_pending_extensions", "must be a whole number from 1 to 100, not 'x'"),
    ]


def test_an_empty_workspace_is_a_problem_not_a_crash() -> None:
    # Found by tests/hostile: `workspace:` with nothing after it passed the check and then failed.
    found = problems(EXAMPLE.replace("workspace:\n  team_id: T0000000001", "workspace:"))
    assert ("workspace", "must be a mapping, not empty") in [(place, message) for _, place, message in found]


def test_the_example_roster_and_the_readme_show_every_roster_key() -> None:
    # Operators learn the format from these two: a key in neither (request_channels and the quotas,
    # once) exists only for whoever reads the parser.
    keys = set(_TOP_KEYS)
    in_example = set(re.findall(r"^(?:# )?([a-z_]+):", EXAMPLE, re.MULTILINE))
    assert keys - in_example == set(), "keys missing from deploy/roster.example.yaml"
    readme = (EXAMPLE_ROSTER.parents[1] / "README.md").read_text(encoding="utf-8")
    in_table = set(re.findall(r"^\| `([a-z_]+)` \|", readme, re.MULTILINE))
    assert keys - in_table == set(), "keys missing from the README's roster keys table"
