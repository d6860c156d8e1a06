"""Token providers without a cluster: refresh ahead of expiry, one shared refresh, invalidate, the
oauth command provider's template and cache, kubeconfig exec plugins."""

import base64
import sys
import textwrap
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import trio
from google.auth import _helpers as google_helpers

from fleet.auth import (
    AuthError,
    CommandTokenProvider,
    EksAuth,
    EksTokenProvider,
    ExecTokenProvider,
    GkeTokenProvider,
    RefreshingTokenProvider,
    Token,
    build_provider,
)
from fleet.auth.gke import REFRESH_AHEAD


class CountingProvider(RefreshingTokenProvider):
    def __init__(self, lifetime, clock, gate=None):
        super().__init__(refresh_ahead=10, clock=clock)
        self.lifetime = lifetime
        self.gate = gate
        self.count = 0

    entered = threading.Event()

    def _mint(self):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(timeout=10)
        self.count += 1
        return Token(f"token-{self.count}", self._clock() + self.lifetime)


def test_refresh_ahead_of_expiry_and_invalidate():
    now = [0.0]
    provider = CountingProvider(60, lambda: now[0])
    assert provider.token() == "token-1"
    now[0] = 49.0
    assert provider.token() == "token-1"
    now[0] = 50.0  # 10 s before expiry
    assert provider.token() == "token-2"
    provider.invalidate("token-1")  # an old token: nothing to do
    assert provider.token() == "token-2"
    provider.invalidate("token-2")
    assert provider.token() == "token-3"
    assert provider.statistics().mints == 3
    assert provider.statistics().invalidations == 1


def test_a_token_shorter_lived_than_refresh_ahead_is_used_for_half_its_life():
    """A 12 s token with refresh_ahead 10: refreshed after 6 s (half its life), not minted for every call."""
    now = [0.0]
    provider = CountingProvider(12, lambda: now[0])
    assert provider.token() == "token-1"
    now[0] = 5.9
    assert provider.token() == "token-1"
    now[0] = 6.0
    assert provider.token() == "token-2"
    assert provider.token() == "token-2"


async def test_concurrent_callers_share_one_refresh():
    gate = threading.Event()
    provider = CountingProvider(600, lambda: 0.0, gate)
    provider.entered = threading.Event()
    limiter = trio.CapacityLimiter(20)
    everyone_running = threading.Barrier(20, timeout=10)
    results = []

    def call_together():
        everyone_running.wait()
        return provider.token()

    async def call():
        results.append(await trio.to_thread.run_sync(call_together, limiter=limiter))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(call)
        # One thread is minting (and holds the lock); the others are calling token() meanwhile.
        assert await trio.to_thread.run_sync(provider.entered.wait, 10)
        gate.set()
    assert results == ["token-1"] * 20
    assert provider.count == 1


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o700)
    return path


def test_oauth_command_template_and_cache(tmp_path):
    counter = tmp_path / "count"
    script = _script(tmp_path, "mint.py", f"""\
        import json, pathlib
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        print(json.dumps({{"access_token": f"oauth-token-{{n}}", "expires_in": 3600}}))
    """)
    now = [0.0]
    provider = CommandTokenProvider([str(script)], template="{{ json.access_token }}", clock=lambda: now[0])
    assert provider.token() == "oauth-token-1"
    now[0] = 299.0
    assert provider.token() == "oauth-token-1"
    now[0] = 300.0  # PT5M by default
    assert provider.token() == "oauth-token-2"
    uncached = CommandTokenProvider([str(script)], template="{{ json.access_token }}", cache=timedelta(0))
    assert uncached.token() == "oauth-token-3"
    assert uncached.token() == "oauth-token-4"


@pytest.mark.parametrize(
    ("command", "template", "message"),
    [
        (["false"], "{{ output }}", "'false' exited with code 1"),
        (["/nonexistent/cmd"], "{{ output }}", "cannot run '/nonexistent/cmd'"),
        (["echo", "plain"], "{{ json.token }}", "the token template failed"),
        (["echo", ""], "{{ output }}", "empty token"),
        (["echo", "x"], "{{ ''.__class__.__mro__ }}", "the token template failed"),
    ],
)
def test_oauth_command_failures(command, template, message):
    with pytest.raises(AuthError, match=message):
        CommandTokenProvider(command, template=template).token()


def test_exec_plugin_token_expiry_and_exec_info(tmp_path):
    script = _script(tmp_path, "plugin.py", """\
        import json, os, sys
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        assert info["spec"]["interactive"] is False, info
        print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {
            "token": "-".join(["exec", sys.argv[1], os.environ["PLUGIN_SUFFIX"], info["spec"]["cluster"]["server"]]),
            "expirationTimestamp": "2030-01-01T00:00:00Z"}}))
    """)
    spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(script),
        "args": ["arg"],
        "env": [{"name": "PLUGIN_SUFFIX", "value": "sfx"}],
        "provideClusterInfo": True,
    }
    provider = ExecTokenProvider(spec, cluster={"server": "https://k"}, clock=lambda: 0.0)
    assert provider.token() == "exec-arg-sfx-https://k"
    assert provider._current.expires_at == 1893456000.0


def test_exec_plugin_without_token(tmp_path):
    script = _script(tmp_path, "plugin.py", """\
        import json
        print(json.dumps({"kind": "ExecCredential", "status": {"clientCertificateData": "x"}}))
    """)
    with pytest.raises(AuthError, match=r"printed no ExecCredential with status\.token"):
        ExecTokenProvider({"command": str(script)}).token()


def _static_session():
    return boto3.Session(aws_access_key_id="AKIDUNITTEST", aws_secret_access_key="unit-test-secret-key")


def _presigned_url(token):
    encoded = token.removeprefix("k8s-aws-v1.")
    return urllib.parse.urlsplit(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode())


def test_eks_tokens_use_the_regional_sts_endpoint_and_last_14_minutes():
    now = [1_000.0]
    provider = EksTokenProvider("prod-ap-1", region="ap-southeast-2", session_factory=_static_session,
                                clock=lambda: now[0])
    first = provider.token()
    url = _presigned_url(first)
    query = urllib.parse.parse_qs(url.query)
    assert url.netloc == "sts.ap-southeast-2.amazonaws.com"  # regional, not the global sts.amazonaws.com
    assert query["X-Amz-Expires"] == ["900"]  # what the server allows: 15 minutes
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    now[0] += 13 * 60 - 1
    assert provider.token() == first
    assert provider.statistics().mints == 1
    now[0] += 1  # 14 minutes of use, less the minute of refresh ahead
    provider.token()  # (signed within the same wall-clock second, the new token may equal the first)
    assert provider.statistics().mints == 2


def test_eks_auth_config_defaults_to_the_cluster_name_region_and_regional_endpoint():
    provider = build_provider(EksAuth(type="eks"), cluster_name="tenant-a", region="eu-north-1", base_dir=None)
    assert isinstance(provider, EksTokenProvider)
    assert (provider.cluster_name, provider.endpoint_url) == ("tenant-a", "https://sts.eu-north-1.amazonaws.com")
    assert provider.lifetime == 14 * 60
    assert provider.cluster == "tenant-a"
    with pytest.raises(AuthError, match="eks auth needs a region"):
        build_provider(EksAuth(type="eks"), cluster_name="tenant-a", region=None, base_dir=None)


class FakeGoogleCredentials:
    """The two things GkeTokenProvider reads from google-auth credentials: ``refresh`` and ``token``/``expiry``."""

    def __init__(self, now):
        self.now = now
        self.refreshes = 0
        self.token = None
        self.expiry = None

    def refresh(self, _request):
        self.refreshes += 1
        self.token = f"ya29.fake-{self.refreshes}"
        self.expiry = datetime.fromtimestamp(self.now[0] + 3600, UTC).replace(tzinfo=None)  # naive UTC


def test_gke_tokens_refreshed_as_early_as_google_auth_does():
    assert google_helpers.REFRESH_THRESHOLD.total_seconds() == REFRESH_AHEAD
    now = [1_700_000_000.0]
    credentials = FakeGoogleCredentials(now)
    provider = GkeTokenProvider(lambda: credentials, clock=lambda: now[0])
    assert provider.token() == "ya29.fake-1"
    now[0] += 3600 - REFRESH_AHEAD - 1
    assert provider.token() == "ya29.fake-1"
    now[0] += 1  # 3 min 45 s before the hour is up
    assert provider.token() == "ya29.fake-2"
    assert credentials.refreshes == 2


def test_exec_plugin_without_expiry_is_run_again_after_max_age_and_after_a_401(tmp_path):
    counter = tmp_path / "count"
    script = _script(tmp_path, "plugin.py", f"""\
        import json, pathlib
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        print(json.dumps({{"kind": "ExecCredential", "status": {{"token": f"exec-token-{{n}}"}}}}))
    """)
    now = [0.0]
    provider = ExecTokenProvider({"command": str(script)}, max_age=300.0, refresh_ahead=30.0, clock=lambda: now[0])
    assert provider.token() == "exec-token-1"
    now[0] = 269.0
    assert provider.token() == "exec-token-1"
    now[0] = 270.0  # no expirationTimestamp: kept max_age, renewed refresh_ahead before that
    assert provider.token() == "exec-token-2"
    provider.invalidate("exec-token-2")  # a 401: the official client would keep this token forever
    assert provider.token() == "exec-token-3"
