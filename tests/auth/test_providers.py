"""Token providers without a cluster: refresh ahead of expiry, one shared refresh, invalidate, the
oauth command provider's template and cache, kubeconfig exec plugins."""

import sys
import textwrap
import threading
from datetime import timedelta

import pytest
import trio

from fleet.auth import AuthError, CommandTokenProvider, ExecTokenProvider, RefreshingTokenProvider, Token


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
