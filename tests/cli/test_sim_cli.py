"""``fleet sim fault`` / ``fleet sim faults``: every fault kind switched from the command line, seen by the client."""

from __future__ import annotations

import time

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client import ApiException
from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.errors import InputError
from fleet.sim import SimFleet

pytestmark = pytest.mark.sim_only


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A running fleet with its control endpoint, as `fleet sim up --out DIR` leaves it."""
    out = tmp_path_factory.mktemp("fleet")
    with SimFleet(2, tls=False, out_dir=out, services=False, control=True) as sim:
        yield sim


def _fault(sim, *options: str):
    result = CliRunner().invoke(app, ["sim", "fault", "--dir", str(sim.out_dir), "--cluster", "sim-0", *options])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def core(running):
    api_client = kubernetes.config.new_client_from_config(str(running.clusters[0].kubeconfig_path))
    api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    with api_client:
        yield kubernetes.client.CoreV1Api(api_client)
    _fault(running)  # healthy again


def test_latency(running, core):
    assert "latency=0.3" in _fault(running, "--latency", "0.3")
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("code", [500, 503])
def test_error_rate_with_chosen_codes(running, core, code):
    _fault(running, "--error-rate", "1", "--error-codes", str(code))
    with pytest.raises(ApiException) as e:
        core.list_namespace()
    assert e.value.status == code


def test_throttling_with_retry_after(running, core):
    output = _fault(running, "--throttle-rate", "1", "--retry-after", "4")
    assert "throttle_rate=1.0" in output
    with pytest.raises(ApiException) as e:
        core.list_namespace()
    assert (e.value.status, e.value.headers["Retry-After"]) == (429, "4")


def test_dropped_mid_response(running, core):
    _fault(running, "--drop-rate", "1")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace()


def test_dropped_mid_watch(running, core):
    _fault(running, "--drop-watch-after", "0.2")
    assert core.list_namespace().items  # plain requests still pass
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError):
        for _ in watch.Watch().stream(core.list_namespace, timeout_seconds=10):
            pass
    assert time.monotonic() - started < 5


def test_stalled_response(running, core):
    _fault(running, "--stall")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=0.5)


def test_down_then_up(running, core):
    _fault(running, "--down")
    with pytest.raises(urllib3.exceptions.HTTPError) as e:
        core.list_namespace(_request_timeout=5)
    assert "refused" in str(e.value).lower()
    assert "healthy" in _fault(running)
    assert core.list_namespace().items


def test_faults_limited_to_paths(running, core):
    _fault(running, "--error-rate", "1", "--path", "/api/v1/namespaces/default/")
    assert core.list_namespace().items
    with pytest.raises(ApiException):
        core.list_namespaced_config_map("default")


def test_faults_lists_every_cluster(running, core):
    _fault(running, "--latency", "0.1", "--throttle-rate", "0.5")
    result = CliRunner().invoke(app, ["sim", "faults", "--dir", str(running.out_dir)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│ sim-" in line}
    assert "latency=0.1" in rows["sim-0"]
    assert "throttle_rate=0.5" in rows["sim-0"]
    assert "healthy" in rows["sim-1"]
    assert running.clusters[0].faults.latency == 0.1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--error-codes", "five"], "--error-codes"),
        (["--error-codes", "200"], "error_codes"),
        (["--cluster", "nope"], "no cluster named 'nope'"),
    ],
)
def test_bad_fault_options_are_input_errors(running, options, message):
    args = ["sim", "fault", "--dir", str(running.out_dir), "--cluster", "sim-1", *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)
    assert running.clusters[1].faults.latency == 0.0
