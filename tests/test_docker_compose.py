"""docker-compose.yml configures the gateway with settings that really exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_uses_real_setting_names() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "gateway", "worker", "hapi"} <= set(services)
    known = {f"KAPGW_{name.upper()}" for name in Settings.model_fields}
    for name in ("gateway", "worker"):
        env = services[name]["environment"]
        assert env, name
        unknown = {key for key in env if key.startswith("KAPGW_")} - known
        assert not unknown, f"{name}: unknown settings {sorted(unknown)}"
        Settings(**{key.removeprefix("KAPGW_").lower(): value for key, value in env.items()})


def test_compose_database_url_points_at_the_postgres_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    url = compose["services"]["gateway"]["environment"]["KAPGW_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
