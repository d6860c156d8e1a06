"""Bad settings through the real CLI (``python -m fleet``): an input error (exit code 2) in one sentence
naming the variable or the ``.env`` line, the value and what is allowed; unknown ``FLEET_*`` names warn
with a suggestion; fleet's own test variables (``FLEET_TEST_*``) are no settings and do not warn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet.settings import SettingsBase, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def _fleet(tmp_path: Path, *args: str, env: dict[str, str] | None = None, dotenv: str | None = None):
    """``python -m fleet ARGS`` in ``tmp_path`` with no FLEET_* variable from outside but ``env``."""
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("FLEET_")}
    clean["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """An inventory of one cluster (never contacted: settings are read before anything else)."""
    kubeconfig = tmp_path / "k.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: not-used}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    path = tmp_path / "inv.yaml"
    path.write_text("clusters:\n  - name: one\n    connection: {kubeconfig: k.yaml}\n")
    return path


BAD_SETTINGS = [
    (
        "FLEET_CONCURRENCY",
        "abc",
        "the environment variable FLEET_CONCURRENCY is 'abc'; expected a whole number of at least 1",
    ),
    (
        "FLEET_CONCURRENCY",
        "0",
        "the environment variable FLEET_CONCURRENCY is '0'; expected a whole number of at least 1",
    ),
    ("FLEET_THREADS", "1.5", "the environment variable FLEET_THREADS is '1.5'; expected a whole number of at least 1"),
    (
        "FLEET_REQUEST_TIMEOUT",
        "0",
        "the environment variable FLEET_REQUEST_TIMEOUT is '0'; expected a number greater than 0",
    ),
    ("FLEET_LOG_FORMAT", "xml", "the environment variable FLEET_LOG_FORMAT is 'xml'; expected text or json"),
    (
        "FLEET_LOG_LEVEL",
        "LOUD",
        "the environment variable FLEET_LOG_LEVEL is 'LOUD'; "
        "expected DEBUG, INFO, WARNING, ERROR or CRITICAL (in any case)",
    ),
    (
        "FLEET_RETRY_ATTEMPTS",
        "x",
        "the environment variable FLEET_RETRY_ATTEMPTS is 'x'; expected a whole number of at least 1",
    ),
    (
        "FLEET_RETRY_JITTER",
        "-1",
        "the environment variable FLEET_RETRY_JITTER is '-1'; expected a number of at least 0",
    ),
    (
        "FLEET_RETRY_MAX_DELAY",
        "soon",
        "the environment variable FLEET_RETRY_MAX_DELAY is 'soon'; expected a number greater than 0",
    ),
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS, ids=[f"{v}={x}" for v, x, _ in BAD_SETTINGS])
def test_a_bad_variable_is_one_sentence_and_exit_2(tmp_path, inventory, variable, value, message):
    out = _fleet(tmp_path, "get", "ns", "-i", str(inventory), env={variable: value})
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"error: {message}\n"


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS, ids=[f"{v}={x}" for v, x, _ in BAD_SETTINGS])
def test_a_bad_dotenv_line_is_named_by_its_line(tmp_path, inventory, variable, value, message):
    out = _fleet(tmp_path, "get", "ns", "-i", str(inventory), dotenv=f"# fleet\nOTHER_TOOL=1\n{variable}={value}\n")
    assert out.returncode == 2, out.stderr
    expected = message.replace(f"the environment variable {variable}", f".env:3: {variable}")
    assert out.stderr == f"error: {expected}\n"


def test_the_environment_wins_over_dotenv_and_is_named(tmp_path, inventory):
    out = _fleet(
        tmp_path,
        "inventory",
        "ls",
        "-i",
        str(inventory),
        env={"FLEET_LOG_FORMAT": "yaml"},
        dotenv="FLEET_LOG_FORMAT=json\n",
    )
    assert out.returncode == 2
    assert out.stderr == "error: the environment variable FLEET_LOG_FORMAT is 'yaml'; expected text or json\n"


def test_every_bad_setting_is_named_at_once(tmp_path, inventory):
    out = _fleet(
        tmp_path, "inventory", "ls", "-i", str(inventory), env={"FLEET_THREADS": "x"}, dotenv="FLEET_CONCURRENCY=-3\n"
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: .env:1: FLEET_CONCURRENCY is '-3'; expected a whole number of at least 1",
        "the environment variable FLEET_THREADS is 'x'; expected a whole number of at least 1",
    ]


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_log_levels_are_accepted_in_any_case(tmp_path, inventory, level):
    out = _fleet(tmp_path, "inventory", "ls", "-i", str(inventory), env={"FLEET_LOG_LEVEL": level})
    assert out.returncode == 0, out.stderr
    assert "one" in out.stdout


def test_a_misspelt_variable_in_dotenv_gets_a_suggestion(tmp_path, inventory):
    out = _fleet(tmp_path, "inventory", "ls", "-i", str(inventory), dotenv="FLEET_THREADS=4\nFLEET_CONCURANCY=5\n")
    assert out.returncode == 0, out.stderr
    warnings = [line.split(" fleet.settings: ", 1)[1] for line in out.stderr.splitlines() if "WARNING" in line]
    assert warnings == [".env:2: FLEET_CONCURANCY is not a fleet setting; did you mean FLEET_CONCURRENCY?"]


def test_unknown_variables_in_the_environment_warn_and_test_variables_do_not(tmp_path, inventory):
    env = {
        "FLEET_CONCURANCY": "5",
        "FLEET_RETRY_ATTEMTPS": "2",
        "FLEET_NOTHING_LIKE_IT": "1",
        "FLEET_TEST_KUBECONFIG": "/nowhere",
        "FLEET_TEST_REQUIRE_TOOLS": "1",
    }
    out = _fleet(tmp_path, "inventory", "ls", "-i", str(inventory), env=env)
    assert out.returncode == 0, out.stderr
    warnings = sorted(line.split(" fleet.settings: ", 1)[1] for line in out.stderr.splitlines() if "WARNING" in line)
    assert warnings == [
        "the environment variable FLEET_CONCURANCY is not a fleet setting; did you mean FLEET_CONCURRENCY?",
        "the environment variable FLEET_NOTHING_LIKE_IT is not a fleet setting (it is ignored)",
        "the environment variable FLEET_RETRY_ATTEMTPS is not a fleet setting; did you mean FLEET_RETRY_ATTEMPTS?",
    ]
    assert "5" not in " ".join(warnings)  # names only: a value may be a secret


class _WithSecret(SettingsBase):
    model_config = SettingsConfigDict(env_prefix="FLEET_SECRETTEST_", env_file=None, extra="ignore")

    token: SecretStr = Field(min_length=12)


def test_a_secret_setting_is_never_echoed(monkeypatch):
    monkeypatch.setenv("FLEET_SECRETTEST_TOKEN", "hunter2")
    with pytest.raises(SettingsError) as caught:
        _WithSecret()
    message = str(caught.value)
    assert message == (
        "the environment variable FLEET_SECRETTEST_TOKEN is (its value is not shown: it is a secret); "
        "expected text of at least 12 characters"
    )
    # pydantic's report holds the value: it is neither the cause nor shown as the context.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert "hunter2" not in repr(caught.value.args)
