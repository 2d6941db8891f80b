"""Settings: defaults, environment variables, and clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AGENTMILL_HOME",
        "AGENTMILL_DATABASE_URL",
        "DATABASE_URL",
        "AGENTMILL_BROKER_URL",
        "REDIS_URL",
        "AGENTMILL_API_PORT",
        "AGENTMILL_ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.home == Path.home() / ".local" / "share" / "agentmill"
    assert settings.pg_dir == settings.home / "pg"
    assert settings.database_url is None
    assert settings.broker_url is None
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("AGENTMILL_API_PORT", "9001")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    monkeypatch.setenv("AGENTMILL_BROKER_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings()
    assert settings.home == tmp_path / "h"
    assert settings.api_port == 9001
    assert settings.database_url == "postgresql://u:p@db:5432/x"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"


def test_prefixed_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/a")
    monkeypatch.setenv("AGENTMILL_DATABASE_URL", "postgresql://b/b")
    assert load_settings().database_url == "postgresql://b/b"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("AGENTMILL_DATABASE_URL", "mysql://root@localhost/x", "PostgreSQL URL"),
        ("AGENTMILL_BROKER_URL", "kafka://x", "must use one of"),
        ("AGENTMILL_API_PORT", "99999", "AGENTMILL_API_PORT"),
        ("AGENTMILL_API_PORT", "eighty", "AGENTMILL_API_PORT"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_production_refuses_the_embedded_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMILL_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="AGENTMILL_DATABASE_URL"):
        load_settings()
    monkeypatch.setenv("AGENTMILL_DATABASE_URL", "postgresql://u@db/x")
    assert load_settings().environment == "production"


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.api_port = 1  # type: ignore[misc]


def test_the_embedding_model_defaults_to_the_bundled_one_and_a_bad_path_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AGENTMILL_EMBEDDING_MODEL", raising=False)
    assert load_settings().embedding_model is None
    monkeypatch.setenv("AGENTMILL_EMBEDDING_MODEL", "")
    assert load_settings().embedding_model is None
    monkeypatch.setenv("AGENTMILL_EMBEDDING_MODEL", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"AGENTMILL_EMBEDDING_MODEL: .*missing is not a dir"):
        load_settings()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("AGENTMILL_EMBEDDING_MODEL", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"no modules\.json or config\.json"):
        load_settings()
    (tmp_path / "empty" / "modules.json").write_text("[]")
    monkeypatch.setenv("AGENTMILL_EMBEDDING_MODEL", str(tmp_path / "." / "empty"))
    assert load_settings().embedding_model == tmp_path / "empty"
