"""Token providers (eks, gke, oauth command, kubeconfig exec plugins, static) behind one synchronous,
thread-safe ``TokenProvider`` contract, and the ``auth:`` configuration that selects one."""

from fleet.auth.config import AuthConfig, EksAuth, GkeAuth, OAuthCommandAuth, build_provider
from fleet.auth.eks import EksTokenProvider, presign_token
from fleet.auth.errors import AuthError
from fleet.auth.exec_plugin import ExecTokenProvider
from fleet.auth.gke import GkeTokenProvider, google_credentials
from fleet.auth.oauth import CommandTokenProvider, extract_token
from fleet.auth.provider import RefreshingTokenProvider, StaticTokenProvider, Token, TokenProvider

__all__ = [
    "AuthConfig",
    "AuthError",
    "CommandTokenProvider",
    "EksAuth",
    "EksTokenProvider",
    "ExecTokenProvider",
    "GkeAuth",
    "GkeTokenProvider",
    "OAuthCommandAuth",
    "RefreshingTokenProvider",
    "StaticTokenProvider",
    "Token",
    "TokenProvider",
    "build_provider",
    "extract_token",
    "google_credentials",
    "presign_token",
]
