"""``FleetSettings``: every setting is a documented ``FLEET_*`` variable, read from the environment or ``.env``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet.settings import FleetSettings, RetrySettings, SettingsError, setting_names

README = Path(__file__).resolve().parents[2] / "README.md"


def _variables() -> list[str]:
    top = [f"FLEET_{name.upper()}" for name in FleetSettings.model_fields if name != "retry"]
    retry = [f"FLEET_RETRY_{name.upper()}" for name in RetrySettings.model_fields]
    return top + retry


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`(FLEET_[A-Z_]+)`", README.read_text()))
    assert set(_variables()) <= documented, sorted(set(_variables()) - documented)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No FLEET_* variable from the outside, and a working directory without a .env file."""
    for name in _variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_env):
    settings = FleetSettings()
    assert (settings.concurrency, settings.threads, settings.request_timeout) == (20, 40, 30.0)
    assert (settings.retry.attempts, settings.retry.initial_delay) == (6, 0.2)


def test_environment_variables_override_the_defaults(clean_env, monkeypatch):
    monkeypatch.setenv("FLEET_CONCURRENCY", "5")
    monkeypatch.setenv("FLEET_LOG_FORMAT", "json")
    monkeypatch.setenv("FLEET_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("FLEET_RETRY_MAX_DELAY", "2.5")
    settings = FleetSettings()
    assert (settings.concurrency, settings.log_format) == (5, "json")
    assert (settings.retry.attempts, settings.retry.max_delay) == (3, 2.5)


def test_a_dotenv_file_is_read_for_every_setting(clean_env):
    (clean_env / ".env").write_text("FLEET_THREADS=7\nFLEET_RETRY_ATTEMPTS=2\nOTHER_TOOL=ignored\n")
    settings = FleetSettings()
    assert settings.threads == 7
    assert settings.retry.attempts == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FLEET_CONCURRENCY", "0"), ("FLEET_LOG_FORMAT", "xml"), ("FLEET_RETRY_ATTEMPTS", "x")],
)
def test_a_bad_value_names_the_setting(clean_env, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as e:
        FleetSettings()
    assert str(e.value).startswith(f"the environment variable {variable} is {value!r}; expected ")
    assert e.value.exit_code == 2


def test_setting_names_are_every_documented_variable():
    assert setting_names() == set(_variables())
