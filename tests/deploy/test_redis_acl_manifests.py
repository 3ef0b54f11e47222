"""The Redis ACL users (bot/redis_acl.py) as shipped: the same in deploy/base, the Helm chart and
`breakglass deploy redis-acl`, and every key bot/store/keys.py names given to the web or kept from it
on purpose. tests/ops/test_redis_acl.py runs the real processes against a redis-server with them."""

from __future__ import annotations

import yaml

from bot.cli import main
from bot.redis_acl import WORKER_ONLY_KEYS, acl_file, acl_users, key_patterns
from bot.store.keys import Keys
from tests.deploy.conftest import DEPLOY
from tests.deploy.test_helm_chart import chart


def test_every_key_is_the_webs_or_kept_from_it_by_name() -> None:
    patterns = key_patterns(Keys("breakglass"))
    assert set(patterns) >= WORKER_ONLY_KEYS, "WORKER_ONLY_KEYS names a key bot/store/keys.py no longer has"
    web, worker = acl_users()
    for name, pattern in patterns.items():
        assert (pattern in web.keys) is (name not in WORKER_ONLY_KEYS), name
    assert "breakglass:sweep:running" not in web.keys
    assert not [p for p in web.keys if p in ("*", "breakglass:*", "rq:*")], "a pattern that covers everything"
    assert worker.keys == ("breakglass:*", "rq:*")
    assert (web.name, worker.name) == ("breakglass-web", "breakglass-worker")


def test_neither_user_may_run_dangerous_or_admin_commands() -> None:
    for user in acl_users():
        rules = user.rules().split()
        assert rules.index("-@dangerous") > rules.index("+@write"), "removed after the categories that add"
        assert "-@admin" in rules
        assert not {"+@all", "+@dangerous", "+@admin", "allkeys", "allchannels", "nopass"} & set(rules)


def test_base_chart_and_command_ship_the_same_users(capsys: object) -> None:
    base = yaml.safe_load((DEPLOY / "base" / "redis-acl.yaml").read_text())
    assert base["data"]["users.acl"] == acl_file("breakglass")
    assert chart().get("ConfigMap", "breakglass-redis-acl")["data"]["users.acl"] == acl_file("breakglass")
    other = chart("--set", "env.BREAKGLASS_KEY_PREFIX=team-a")
    assert other.get("ConfigMap", "breakglass-redis-acl")["data"]["users.acl"] == acl_file("team-a")
    assert main(["deploy", "redis-acl"]) == 0
    assert capsys.readouterr().out == acl_file("breakglass")  # type: ignore[attr-defined]
    assert main(["deploy", "redis-acl", "--prefix", "b*"]) == 2
