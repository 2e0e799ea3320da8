"""Settings: KAPGW_ environment variables; production refuses default secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.core.config import Settings


def test_defaults_are_the_embedded_sqlite() -> None:
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///./data/kap-gateway.db"
    assert settings.is_sqlite
    assert str(settings.sqlite_path()) == "data/kap-gateway.db"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPGW_BASE_URL", "https://kap.example.org")
    monkeypatch.setenv("KAPGW_MAX_BODY_BYTES", "2048")
    settings = Settings(_env_file=None)
    assert settings.fhir_base_url == "https://kap.example.org/fhir"
    assert settings.max_body_bytes == 2048


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="KAPGW_TOKEN_SIGNING_SECRET"):
        Settings(_env_file=None, env="production", base_url="https://kap.example.org")


def test_production_with_real_secret_starts() -> None:
    settings = Settings(
        _env_file=None,
        env="production",
        base_url="https://kap.example.org",
        token_signing_secret="a-real-secret-from-the-vault",
    )
    assert settings.env == "production"


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        pytest.param("https://kap.example.org", True, id="https"),
        pytest.param("http://localhost:8000", True, id="localhost"),
        pytest.param("http://127.0.0.1:8000", True, id="127.0.0.1"),
        pytest.param("http://[::1]:8000", True, id="ipv6-loopback"),
        pytest.param("http://kap.example.org", False, id="http"),
        pytest.param("http://kap.example.org/127.0.0.1", False, id="loopback-only-in-the-path"),
        pytest.param("http://127.0.0.1.example.org", False, id="loopback-as-a-subdomain"),
        pytest.param("ftp://kap.example.org", False, id="other-scheme"),
    ],
)
def test_production_base_url_is_https_except_on_localhost(base_url: str, allowed: bool) -> None:
    def make() -> Settings:
        return Settings(
            _env_file=None, env="production", base_url=base_url, token_signing_secret="real-secret"
        )

    if allowed:
        assert make().base_url == base_url
    else:
        with pytest.raises(ValidationError, match="KAPGW_BASE_URL must be https"):
            make()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite:///./data/x.db", id="sqlite"),
        pytest.param("postgresql://u@h/db", id="postgresql"),
        pytest.param("postgresql+psycopg://u@h/db", id="postgresql-psycopg"),
        pytest.param("postgres://u@h/db", id="postgres"),
    ],
)
def test_database_urls_accepted(url: str) -> None:
    assert Settings(_env_file=None, database_url=url).database_url == url


@pytest.mark.parametrize("url", ["mysql://u@h/db", "nonsense", ""])
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="must be a sqlite:/// or postgresql:// URL"):
        Settings(_env_file=None, database_url=url)


@pytest.mark.parametrize("seconds", [59, 86401])
def test_token_lifetime_bounds(seconds: int) -> None:
    with pytest.raises(ValidationError, match="access_token_lifetime_seconds"):
        Settings(_env_file=None, access_token_lifetime_seconds=seconds)
