"""Settings from the environment: a missing or malformed variable stops start-up with one line that
names it, and secret values appear nowhere (not in that line, not in ``repr``/``str``)."""

import traceback

import pytest

from bot.domain.keys import Purpose
from bot.settings import Settings, SettingsError, load_audit_settings, load_settings, settings_problems

BOT_TOKEN = "xoxb-1111-2222-SECRETBOTTOKEN"
SIGNING_SECRET = "SECRETSIGNING0123456789"
APP_TOKEN = "xapp-1-SECRETAPPTOKEN"
ADMIN_TOKEN = "xoxp-SECRETADMINTOKEN"
WEBHOOK_TOKEN = "SECRETWEBHOOKTOKEN"
SIGNING_KEY = "SECRETCHAINKEY-0123456789abcdefghij"
SECRETS = (
    "SECRETBOTTOKEN",
    "SECRETSIGNING",
    "SECRETAPPTOKEN",
    "SECRETADMINTOKEN",
    "SECRETWEBHOOKTOKEN",
    "SECRETCHAINKEY",
)

KEYED = {"BREAKGLASS_SIGNING_KEY": SIGNING_KEY}
MINIMAL = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, **KEYED}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings(environ) also reads the process environment (pydantic-settings fills missing
    # fields from it), so a variable set where the tests run would leak into every case.
    for field in Settings.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    text = str(raised.value)
    assert "\n" not in text, "one line"
    rendered = "".join(traceback.format_exception(raised.value))
    for secret in SECRETS:
        assert secret not in text
        assert secret not in repr(raised.value)
        assert secret not in rendered
    return text


def test_minimal_environment_gives_the_contract_defaults() -> None:
    settings = load_settings(MINIMAL)
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.roster_path == "roster.yaml"
    assert settings.port == 3000
    assert settings.audit_webhook_token is None
    assert settings.slack_app_token is None
    assert not settings.socket_mode


def test_app_token_selects_socket_mode_without_a_signing_secret() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, **KEYED})
    assert settings.socket_mode
    assert settings.slack_signing_secret is None


def test_the_worker_starts_without_the_signing_secret_the_web_process_needs() -> None:
    # The worker verifies no Slack request; the secret alone forges approvals (deploy/ keeps it out).
    environ = {key: value for key, value in MINIMAL.items() if key != "SLACK_SIGNING_SECRET"}
    worker = load_settings(environ, process="worker")
    assert worker.slack_signing_secret is None
    assert not worker.socket_mode
    assert settings_problems(environ, process="worker") == []
    assert settings_problems(environ) == [
        "SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode"
    ]
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: is required unless"):
        load_settings(environ)


def test_api_url_gets_its_trailing_slash() -> None:
    settings = load_settings({**MINIMAL, "BREAKGLASS_SLACK_API_URL": "http://127.0.0.1:9999/api"})
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


def test_without_an_environ_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("BREAKGLASS_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("PORT", "8080")
    settings = load_settings()
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN
    assert settings.port == 8080


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        ({"SLACK_SIGNING_SECRET": SIGNING_SECRET, **KEYED}, "SLACK_BOT_TOKEN: is required"),
        (
            {"SLACK_BOT_TOKEN": "xoxp-SECRETBOTTOKEN", "SLACK_SIGNING_SECRET": SIGNING_SECRET, **KEYED},
            "SLACK_BOT_TOKEN: must be a bot token starting with xoxb-",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, **KEYED},
            "SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode",
        ),
        (
            {**MINIMAL, "SLACK_APP_TOKEN": "xoxb-SECRETAPPTOKEN"},
            "SLACK_APP_TOKEN: must be an app-level token starting with xapp-",
        ),
        (
            {**MINIMAL, "BREAKGLASS_SLACK_API_URL": "slack.com/api"},
            "BREAKGLASS_SLACK_API_URL: must be an http(s) URL",
        ),
        (
            {**MINIMAL, "BREAKGLASS_REDIS_URL": "localhost:6379"},
            "BREAKGLASS_REDIS_URL: must be a redis://, rediss:// or unix:// URL",
        ),
        ({**MINIMAL, "PORT": "http"}, "PORT: must be a whole number"),
        ({**MINIMAL, "PORT": "0"}, "PORT: must be 1 or more"),
        ({**MINIMAL, "PORT": "65536"}, "PORT: must be 65535 or less"),
        (
            {**MINIMAL, "BREAKGLASS_SWEEP_INTERVAL": "often"},
            "BREAKGLASS_SWEEP_INTERVAL: 'often' is not a duration; write it like 90s, 15m, 2h, 1h30m, 60min or 1 hour",
        ),
        (
            {**MINIMAL, "BREAKGLASS_REDIS_URL": "redis://:SECRETBOTTOKEN/x@localhost:63x9/0"},
            "BREAKGLASS_REDIS_URL: is not a valid Redis URL (check its host, port and options)",
        ),
        ({**MINIMAL, "SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN: is set but empty"),
        ({**MINIMAL, "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET: is set but empty"),
        ({**MINIMAL, "SLACK_SIGNING_SECRET": "  "}, "SLACK_SIGNING_SECRET: is set but empty"),
        ({**MINIMAL, "SLACK_APP_TOKEN": ""}, "SLACK_APP_TOKEN: is set but empty"),
        ({**MINIMAL, "SLACK_ADMIN_TOKEN": ""}, "SLACK_ADMIN_TOKEN: is set but empty"),
        ({**MINIMAL, "BREAKGLASS_AUDIT_WEBHOOK_TOKEN": ""}, "BREAKGLASS_AUDIT_WEBHOOK_TOKEN: is set but empty"),
        (
            {**MINIMAL, "BREAKGLASS_AUDIT_WEBHOOK_TOKEN": "SECRETWEBHOOK15"},
            "BREAKGLASS_AUDIT_WEBHOOK_TOKEN: must be at least 16 characters: it alone guards the audit webhook, "
            "and a short token can be guessed",
        ),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}, "BREAKGLASS_SIGNING_KEY: is required"),
        ({**MINIMAL, "BREAKGLASS_SIGNING_KEY": ""}, "BREAKGLASS_SIGNING_KEY: is set but empty"),
        (
            {**MINIMAL, "BREAKGLASS_SIGNING_KEY": "SECRETCHAINKEY-0123456789abcdef"},
            "BREAKGLASS_SIGNING_KEY: must be at least 32 characters: it keys the audit chain and signs every "
            "binding's warrant, and a short one can be guessed",
        ),
    ],
    ids=[
        "bot-token-missing",
        "bot-token-wrong-kind",
        "signing-secret-missing",
        "app-token-wrong-kind",
        "api-url-not-http",
        "redis-url-not-redis",
        "port-not-a-number",
        "port-zero",
        "port-too-high",
        "sweep-interval-not-a-duration",
        "redis-url-unparseable",
        "bot-token-empty",
        "signing-secret-empty",
        "signing-secret-blank",
        "app-token-empty",
        "admin-token-empty",
        "webhook-token-empty",
        "webhook-token-too-short",
        "signing-key-missing",
        "signing-key-empty",
        "signing-key-too-short",
    ],
)
def test_bad_setting_gives_one_line_naming_the_variable(environ: dict[str, str], line: str) -> None:
    assert refusal(environ) == line


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BREAKGLASS_AUDIT_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            **KEYED,
        }
    )
    shown = (repr(settings), str(settings), repr(settings.slack_bot_token), f"{settings.slack_app_token}")
    for text in (*shown, repr(settings.keys())):
        for secret in SECRETS:
            assert secret not in text
    assert settings.slack_admin_token is not None
    assert settings.slack_admin_token.get_secret_value() == ADMIN_TOKEN


def test_settings_are_frozen() -> None:
    settings = load_settings(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 8080  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_a_webhook_token_of_the_minimum_length_turns_the_endpoint_on() -> None:
    settings = load_settings({**MINIMAL, "BREAKGLASS_AUDIT_WEBHOOK_TOKEN": "SECRETWEBHOOK016"})
    assert settings.audit_webhook_token is not None


def test_audit_settings_need_no_slack_tokens() -> None:
    settings = load_audit_settings({"BREAKGLASS_REDIS_URL": "redis://127.0.0.1:6390/2", "BREAKGLASS_KEY_PREFIX": "x"})
    assert (settings.redis_url, settings.key_prefix) == ("redis://127.0.0.1:6390/2", "x")
    assert load_audit_settings({}).redis_url == "redis://localhost:6379/0"


def test_audit_settings_refuse_a_bad_redis_url_in_one_line() -> None:
    with pytest.raises(SettingsError) as raised:
        load_audit_settings({"BREAKGLASS_REDIS_URL": "redis://localhost:port/0"})
    assert str(raised.value) == "BREAKGLASS_REDIS_URL: is not a valid Redis URL (check its host, port and options)"


def test_audit_settings_carry_the_chain_key_only_when_the_signing_key_is_set() -> None:
    assert load_audit_settings({}).chain_key() is None
    keyed = load_audit_settings(KEYED).chain_key()
    assert keyed is not None
    assert keyed == load_settings(MINIMAL).keys().derive(Purpose.AUDIT_CHAIN)
    assert SIGNING_KEY.encode() not in keyed
