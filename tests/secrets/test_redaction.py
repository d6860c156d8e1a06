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


def _naive(values: set[str], text: str) -> str:
    """What redaction means: every value, longest first, replaced where it occurs."""
    for value in sorted(values, key=lambda v: (-len(v), v)):
        text = text.replace(value, "***")
    return text


def test_many_values_are_found_wherever_they_are_in_a_text():
    # Past a few dozen values the registry looks values up by their pieces instead of testing each:
    # every length (each piece size and stride), at the start, the end, alone, side by side.
    registry = RedactionRegistry()
    values = [f"{n:0{width}d}-k" for width in (2, 3, 4, 5, 8, 9, 13, 29, 30, 60) for n in range(0, 40)]
    for value in values:
        registry.register(value)
    for value in values:
        assert registry.redact(value) == "***"
        assert registry.redact(f"<{value}>") == "<***>"
        assert registry.redact(f"{value}{value} {value}") == "****** ***"
    assert registry.redact("nothing registered here, and 7-k is too short") == (
        "nothing registered here, and 7-k is too short"
    )


def test_many_values_sharing_most_of_their_text_are_told_apart():
    # kubeconfigs of one fleet: the same layout and CA, a different token and name each
    registry = RedactionRegistry()
    body = "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: " + "Q" * 300
    configs = [
        f"{body}\n    server: https://10.0.0.{n}\nusers:\n- user:\n    token: tok-{n:04d}-{n * 7919:08d}\n"
        for n in range(200)
    ]
    for config in configs:
        registry.register(config)
        registry.register(config.rsplit("token: ", 1)[1].strip())
    assert registry.redact(f"a {configs[123]} b") == "a *** b"
    assert registry.redact(f"token tok-0042-{42 * 7919:08d}.") == "token ***."
    assert registry.redact(configs[5][:-40]) == configs[5][:-40]  # a part of a kubeconfig is no secret
    encoded = base64.b64encode(configs[77].encode()).decode()
    assert registry.redact(f"[{encoded}]") == "[***]"


def test_redaction_with_many_values_masks_as_one_value_at_a_time_would():
    import random

    rng = random.Random(8)
    alphabet = "ab*-"  # few letters: values overlap, contain each other, and meet across masks
    values = {"".join(rng.choice(alphabet) for _ in range(rng.randint(4, 40))) for _ in range(300)}
    registry = RedactionRegistry()
    for value in values:
        registry.register(value)
    registered = registry.values()
    for _ in range(300):
        text = "".join(rng.choice(alphabet + "c") for _ in range(rng.randint(0, 200)))
        redacted = registry.redact(text)
        assert redacted == _naive(set(registered), text)
