import base64
import logging

import pytest

from fleet.redaction import RedactionRegistry
from fleet.secrets import RedactingFilter


def test_redact_replaces_every_registered_value_longest_first():
    registry = RedactionRegistry()
    registry.register("s3cr3t-token")
    registry.register("s3cr3t")
    assert registry.redact("a s3cr3t-token and a s3cr3t") == "a *** and a ***"


def test_redact_covers_the_base64_form():
    registry = RedactionRegistry()
    registry.register("line-one-secret\nline-two-secret")
    encoded = base64.b64encode(b"line-one-secret\nline-two-secret").decode()
    assert registry.redact(f"x {encoded} y") == "x *** y"
    assert registry.redact("line-one-secret") == "line-one-secret"  # a part is not the secret


def test_short_values_are_not_registered():
    registry = RedactionRegistry()
    registry.register("ab")
    assert registry.redact("abc ab") == "abc ab"


def test_filter_redacts_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture):
    registry = RedactionRegistry()
    registry.register("hunter2-password")
    logger = logging.getLogger("fleet.test.redaction.child")
    caplog.handler.addFilter(RedactingFilter(registry))
    try:
        with caplog.at_level(logging.INFO):
            logger.info("connecting with %s", "hunter2-password")
            try:
                raise ValueError("bad hunter2-password")
            except ValueError:
                logger.exception("failed")
    finally:
        caplog.handler.filters.clear()
    assert "hunter2-password" not in caplog.text
    assert "connecting with ***" in caplog.text
    assert "bad ***" in caplog.text
