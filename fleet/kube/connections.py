"""The connections of one cluster's client: one urllib3 pool with one TLS context, shared by every request.

The official client's ``RESTClientObject`` hands urllib3 the CA, client certificate and key as *files*,
and urllib3 then builds a new ``SSLContext`` and reads those files for every connection it opens
(``ssl_wrap_socket``: ``load_verify_locations``, ``load_cert_chain``, an encrypted-key check).
``configure_pool`` builds that context once per client, as urllib3 would (its own
``create_urllib3_context``), and gives it to the pool instead of the files, so that a new connection
costs only its handshake. It also turns urllib3's retries off (fleet owns retries: urllib3's would hide
attempts from the policy and the logs) and makes the connections interruptible (``interruptible.py``).

Connections are kept alive and reused by the client's next requests; it opens another only while all
of its open ones are busy (parallel requests, a watch).
"""

from __future__ import annotations

import ssl
from typing import Any

import urllib3
from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs

from fleet.kube.interruptible import track_connections

#: The pool arguments the shared context takes the place of (urllib3 would load them per connection).
_TLS_FILES = ("ca_certs", "ca_cert_dir", "ca_cert_data", "cert_file", "key_file", "key_password")


def configure_pool(pool_manager: urllib3.PoolManager) -> None:
    """Set up a client's pool manager before it opens any connection (see the module's docstring)."""
    kw: dict[str, Any] = pool_manager.connection_pool_kw
    kw["retries"] = False
    if "ssl_context" not in kw:
        context = tls_context(kw)
        if context is not None:
            kw["ssl_context"] = context
            for key in _TLS_FILES:
                kw.pop(key, None)
    track_connections(pool_manager)


def _no_password() -> bytes:
    return b""  # an encrypted key without a password fails to load (never a prompt on the terminal)


def tls_context(kw: dict[str, Any]) -> ssl.SSLContext | None:
    """The ``SSLContext`` urllib3 would build for each connection from the pool arguments ``kw``; ``None``
    when the files cannot be loaded, so that urllib3 meets the same problem and the first request fails
    with it, as without a shared context."""
    context = create_urllib3_context(cert_reqs=resolve_cert_reqs(kw.get("cert_reqs")))
    ca_certs, ca_cert_dir, ca_cert_data = kw.get("ca_certs"), kw.get("ca_cert_dir"), kw.get("ca_cert_data")
    try:
        if ca_certs or ca_cert_dir or ca_cert_data:
            context.load_verify_locations(ca_certs, ca_cert_dir, ca_cert_data)
        else:
            context.load_default_certs()
        if kw.get("cert_file"):
            context.load_cert_chain(kw["cert_file"], kw.get("key_file"), kw.get("key_password") or _no_password)
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None
    return context
