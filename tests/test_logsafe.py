"""Secrets are redacted from log lines and tracebacks in every form a library writes them."""

from __future__ import annotations

import json
import logging

import pytest

from switchgear.logs import JsonFormatter
from switchgear.logsafe import Redact, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /?page=getdata&devid=1728053249&devpass=012345 failed", "012345"),
        ("POST /sendCommand?key=k3y-v4lue", "k3y-v4lue"),
        ("Authorization: Bearer sg_abc.DEF-ghi", "sg_abc.DEF-ghi"),
        ("mqtt://user:hunter2@broker:1883", "hunter2"),
        ("{'username': 'a@example.com', 'password': 'correct horse A'}", "correct horse A"),
        ('{"user": {"email": "a@example.com", "password": "pa ss"}}', "pa ss"),
        ("{'authorization': b'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ('{"Ocp-Apim-Subscription-Key": "0123abcd"}', "0123abcd"),
        ("{'meter_password': '00001234', 'relay': 'Relay_1'}", "00001234"),
        ("client_secret=s3cr3t&grant_type=password", "s3cr3t"),
        ("input_value={'refresh_token': 'rt-1'}", "rt-1"),
        ('"WebSocket /ws/response_Ab-1_x?key=k" [accepted]', "response_Ab-1_x"),
        ("HTTP Request: GET http://h:80/sub/my-own-channel-name.b20 200", "my-own-channel-name"),
    ],
)
def test_a_secret_is_redacted(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned and "[redacted]" in cleaned, cleaned


def test_what_is_no_secret_stays() -> None:
    text = "meter 7 answered 429; {'relay': 'Relay_1', 'status': 'open'} monkey=1 tokens=3"
    assert redact(text) == text


def _record(message: str) -> logging.LogRecord:
    try:
        raise RuntimeError(message)
    except RuntimeError as err:
        return logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), (
            type(err), err, err.__traceback__))  # fmt: skip


def test_a_traceback_is_redacted_for_text_and_json_lines() -> None:
    record = _record("GET /?devpass=012345 with {'password': 'pw 1'}")
    assert Redact().filter(record)
    text = logging.Formatter().format(record)
    line = json.loads(JsonFormatter().format(record))
    for shown in (text, line["exc_info"]):
        assert "Traceback" in shown and "RuntimeError" in shown
        assert "012345" not in shown and "pw 1" not in shown
