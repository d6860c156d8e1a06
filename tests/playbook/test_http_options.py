"""The ``http`` and ``notify`` options: what a status list accepts, how a body is sent, and the errors of
bad options (never quoting a value that may be a secret)."""

from __future__ import annotations

import pydantic
import pytest

from fleet.playbook.http_steps import HttpTask, NotifyTask
from fleet.redaction import REGISTRY, register_secret


@pytest.mark.parametrize(
    ("expected", "accepted", "refused"),
    [
        (None, [200, 201, 204, 299], [199, 301, 404, 500]),
        (201, [201], [200, 202]),
        ("204", [204], [200]),
        (["2xx", 404], [200, 250, 404], [401, 500]),
        (["4xx", "5xx"], [400, 503], [200, 302]),
    ],
)
def test_expected_statuses(expected, accepted, refused):
    options = {"url": "http://x"} | ({} if expected is None else {"expectedStatus": expected})
    task = HttpTask.model_validate(options)
    assert [s for s in accepted + refused if task.accepts(s)] == accepted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://secret-host/x"}, "url: Value error, expected an absolute http:// or https:// URL"),
        ({"url": "/relative"}, "url: Value error, expected an absolute http:// or https:// URL"),
        ({"url": "http://x", "expectedStatus": [200, 700]}, "got 700"),
        ({"url": "http://x", "expectedStatus": "2XX"}, "got '2XX'"),
        ({"url": "http://x", "method": "FETCH"}, "method"),
        ({"url": "http://x", "requestTimeout": "PT0S"}, "requestTimeout"),
    ],
)
def test_bad_options_say_which_and_quote_no_url(options, message):
    with pytest.raises(pydantic.ValidationError) as e:
        HttpTask.model_validate(options)
    text = str(e.value).replace("\n  ", ": ")
    assert message in text
    assert "secret-host" not in text


def test_a_body_is_text_or_json_and_a_content_type_given_wins():
    text = HttpTask(url="http://x", body="hello")._content()
    assert text == (b"hello", {"Content-Type": "text/plain; charset=utf-8"})
    data = HttpTask(url="http://x", body={"a": [1, 2]})._content()
    assert data == (b'{"a":[1,2]}', {"Content-Type": "application/json"})
    given = HttpTask(url="http://x", body="a,b", headers={"content-type": "text/csv"})._content()
    assert given == (b"a,b", {"content-type": "text/csv"})
    assert HttpTask(url="http://x")._content() == (None, {})


def test_credential_headers_are_registered_when_the_request_is_made():
    task = HttpTask(
        url="https://user:pa55word@x/y",
        headers={"Authorization": "Bearer tok-123456", "X-Registry-Token": "rt-987654", "Accept": "text/plain"},
    )
    try:
        task._register_credentials()
        assert {"Bearer tok-123456", "tok-123456", "rt-987654", "pa55word"} <= REGISTRY.values()
        assert "text/plain" not in REGISTRY.values()
    finally:
        REGISTRY.clear()


def test_a_notify_webhook_must_be_a_registered_secret():
    hook = "https://hooks.example.com/services/T/B/x"
    with pytest.raises(pydantic.ValidationError, match="the webhook URL must come from a secret"):
        NotifyTask.model_validate({"webhook": hook, "text": "hi"})
    register_secret(hook)
    try:
        assert NotifyTask.model_validate({"url": hook, "text": "hi"}).webhook == hook
    finally:
        REGISTRY.clear()
