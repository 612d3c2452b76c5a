"""Settings: environment over .env over defaults, validated once, password never shown."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from support.projects import ROOT

from newsletter.common.config import Settings, env_name, load_settings
from newsletter.common.errors import ConfigError


def test_env_example_documents_every_setting() -> None:
    documented = set(
        re.findall(r"^(NEWSLETTER_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    expected = {env_name(f.name) for f in fields(Settings)}
    assert documented == expected


def test_precedence_and_types(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("NEWSLETTER_SMTP_HOST=from-dotenv\nNEWSLETTER_RATE=30\nNEWSLETTER_UTM=yes\n")
    settings = load_settings({"NEWSLETTER_SMTP_HOST": "from-env"}, dotenv)
    assert settings.smtp_host == "from-env"
    assert settings.rate == 30.0 and settings.utm is True
    assert settings.port == 587
    assert settings.with_overrides(smtp_host="flag", rate=None).smtp_host == "flag"


def test_password_never_in_repr(tmp_path: Path) -> None:
    settings = load_settings(
        {"NEWSLETTER_SMTP_PASSWORD": "hunter2-secret", "NEWSLETTER_SECRET": "s"}, None
    )
    assert settings.smtp_password == "hunter2-secret"
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"NEWSLETTER_SMTP_SECURITY": "tls"}, "NEWSLETTER_SMTP_SECURITY"),
        ({"NEWSLETTER_SMTP_PORT": "abc"}, "NEWSLETTER_SMTP_PORT"),
        ({"NEWSLETTER_CONNECTIONS": "0"}, "NEWSLETTER_CONNECTIONS"),
        ({"NEWSLETTER_UTM": "maybe"}, "NEWSLETTER_UTM"),
        ({"NEWSLETTER_SMTP_CAFILE": "/no/such/ca.pem"}, "NEWSLETTER_SMTP_CAFILE"),
    ],
)
def test_invalid_values(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, None)
    assert str(caught.value).startswith(setting + ":")


def test_smtp_safety_rules() -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_HOST"):
        Settings().require_smtp()
    with pytest.raises(ConfigError, match="unencrypted"):
        Settings(smtp_host="mail.example.org", smtp_security="none").require_smtp()
    Settings(smtp_host="127.0.0.1", smtp_security="none").require_smtp()
    Settings(
        smtp_host="mail.example.org", smtp_security="none", smtp_allow_insecure=True
    ).require_smtp()
    with pytest.raises(ConfigError, match="AUTH is never sent"):
        Settings(
            smtp_host="127.0.0.1", smtp_security="none", smtp_username="u", smtp_password="p"
        ).require_smtp()


def test_port_range() -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_PORT"):
        load_settings({"NEWSLETTER_SMTP_PORT": "99999"}, None)


def test_provider_default_rates() -> None:
    assert load_settings({"NEWSLETTER_SMTP_HOST": "smtp.office365.com"}, None).rate == 30
    assert load_settings({"NEWSLETTER_SMTP_HOST": "smtp.gmail.com"}, None).rate == 20
    assert load_settings({"NEWSLETTER_SMTP_HOST": "127.0.0.1"}, None).rate == 0
    explicit = {"NEWSLETTER_SMTP_HOST": "smtp.office365.com", "NEWSLETTER_RATE": "10"}
    assert load_settings(explicit, None).rate == 10


def test_env_example_loads_as_is(tmp_path: Path) -> None:
    # A user who copies .env.example to .env must get a working configuration.
    settings = load_settings({}, ROOT / ".env.example")
    assert settings.smtp_port == 0 and settings.port == 587
    assert settings.rate == 0  # smtp.example.org: no provider limit known


def test_numbers_as_the_readme_writes_them_and_errors_that_say_what_to_write(
    tmp_path: Path,
) -> None:
    # The README says "10,000 for Microsoft 365": a chair copies that into .env.
    dotenv = tmp_path / ".env"
    settings = load_settings({"NEWSLETTER_DAILY_LIMIT": "10,000"}, dotenv)
    assert settings.daily_limit == 10_000
    assert load_settings({"NEWSLETTER_DAILY_LIMIT": "2 000"}, dotenv).daily_limit == 2000
    with pytest.raises(ConfigError) as caught:
        load_settings({"NEWSLETTER_DAILY_LIMIT": "lots"}, dotenv)
    assert str(caught.value).startswith("NEWSLETTER_DAILY_LIMIT: invalid value 'lots'")
    assert "a whole number, e.g." in str(caught.value)
    with pytest.raises(ConfigError, match="NEWSLETTER_RATE: .*a number, e.g. 30"):
        load_settings({"NEWSLETTER_RATE": "fast"}, dotenv)
    with pytest.raises(ConfigError, match="NEWSLETTER_UTM: .*true or false"):
        load_settings({"NEWSLETTER_UTM": "maybe"}, dotenv)
    with pytest.raises(ConfigError, match="invalid value '1,0000'"):
        load_settings({"NEWSLETTER_DAILY_LIMIT": "1,0000"}, dotenv)  # not a thousands group


@pytest.mark.parametrize(
    ("name", "written", "read"),
    [
        ("smtp_security", "STARTTLS", "starttls"),
        ("smtp_auth", "Password", "password"),
        ("oauth_provider", "Microsoft", "microsoft"),
        ("imap_security", "SSL", "ssl"),
        ("images", "Embed", "embed"),
    ],
)
def test_enumerated_settings_are_case_insensitive(name: str, written: str, read: str) -> None:
    env = {"NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk", env_name(name): written}
    assert getattr(load_settings(env, None), name) == read
