"""Secret references (``vault:``, ``aws-sm:``, ``env:``, ``file:``), their sources, the run cache and
the redaction registry that keeps secret values out of logs, reports and errors.

The reference syntax is documented in ``fleet.secrets.reference`` and ``inventories/README.md``.
"""

from fleet.redaction import (
    REGISTRY,
    RedactingFilter,
    install_log_redaction,
    quiet_payload_loggers,
    redact,
    register_secret,
)
from fleet.secrets.config import SecretsConfig
from fleet.secrets.errors import SecretError
from fleet.secrets.reference import ReferenceSyntaxError, SecretRef, is_reference, parse_reference
from fleet.secrets.resolver import SecretResolver

__all__ = [
    "REGISTRY",
    "RedactingFilter",
    "ReferenceSyntaxError",
    "SecretError",
    "SecretRef",
    "SecretResolver",
    "SecretsConfig",
    "install_log_redaction",
    "is_reference",
    "parse_reference",
    "quiet_payload_loggers",
    "redact",
    "register_secret",
]
