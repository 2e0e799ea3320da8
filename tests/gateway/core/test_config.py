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
