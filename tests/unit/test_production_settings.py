"""Production settings refuse to start with insecure values, naming the variable; development and
test settings keep their convenient defaults."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from exports.settings import DEFAULT_SIGNING_SECRET, Settings

GOOD = secrets.token_hex(32)


DATABASES = {f"{name}_database_url": f"postgresql://payreports:{secrets.token_urlsafe(18)}@db/{name}"
             for name in ("source", "app", "dagster")}


def production(**overrides) -> Settings:
    return Settings(**{"environment": "production", "signing_secret": GOOD,
                       "public_base_url": "https://reports.example.com", **DATABASES, **overrides})


def test_a_strong_secret_and_https_start():
    assert production().signing_secret == GOOD


@pytest.mark.parametrize("secret", [
    DEFAULT_SIGNING_SECRET, "", "change-me-in-production-32-bytes-or-more", "x" * 64,
    "placeholder-placeholder-placeholder", "short-but-random-Q7zP",
    secrets.token_hex(15),  # 30 bytes
])
def test_default_placeholder_or_short_signing_secrets_are_refused(secret):
    with pytest.raises(ValidationError, match="PAYREPORTS_SIGNING_SECRET"):
        production(signing_secret=secret)


@pytest.mark.parametrize(("overrides", "variable"), [
    ({"webhook_allow_private_targets": True}, "PAYREPORTS_WEBHOOK_ALLOW_PRIVATE_TARGETS"),
    ({"public_base_url": "http://reports.example.com"}, "PAYREPORTS_PUBLIC_BASE_URL"),
    ({"smtp_username": "mailer", "smtp_password": GOOD}, "PAYREPORTS_SMTP_STARTTLS"),
    ({"app_database_url": "postgresql://u:payreports-dev-password@db/reporting"},
     "PAYREPORTS_APP_DATABASE_URL"),
    ({"clickhouse_url": "http://u:change-me@ch:8123"}, "PAYREPORTS_CLICKHOUSE_URL"),
    ({"s3_secret_access_key": "payreports-dev-password"}, "PAYREPORTS_S3_SECRET_ACCESS_KEY"),
    ({"dagster_database_url": None}, "PAYREPORTS_DAGSTER_DATABASE_URL"),  # the embedded server
])
def test_other_insecure_settings_are_refused_by_name(overrides, variable):
    with pytest.raises(ValidationError, match=variable):
        production(**overrides)


def test_acceptable_production_variants():
    production(public_base_url="http://127.0.0.1:8000")  # a local production-shaped stack
    production(smtp_username="mailer", smtp_password=GOOD, smtp_starttls=True)
    production(app_database_url=f"postgresql://u:{secrets.token_urlsafe(20)}@db/reporting")


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValidationError) as error:
        production(signing_secret=DEFAULT_SIGNING_SECRET, webhook_allow_private_targets=True)
    assert "PAYREPORTS_SIGNING_SECRET" in str(error.value)
    assert "PAYREPORTS_WEBHOOK_ALLOW_PRIVATE_TARGETS" in str(error.value)


def test_development_keeps_its_defaults():
    settings = Settings(environment="development", webhook_allow_private_targets=True)
    assert settings.signing_secret == DEFAULT_SIGNING_SECRET
