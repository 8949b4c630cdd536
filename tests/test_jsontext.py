"""The hot paths' JSON codec keeps `json`'s reading of what clients send."""

from __future__ import annotations

import json

import pytest

from switchgear import jsontext


def test_written_compact_in_utf8_with_integer_keys_as_strings() -> None:
    assert jsontext.dumps({"name": "Küche", 1: [True, None, 2.5]}) == (
        '{"name":"Küche","1":[true,null,2.5]}'.encode()
    )
    assert jsontext.dumps_text({"a": (1, 2)}) == '{"a":[1,2]}'


def test_what_orjson_refuses_but_is_json_reads_as_json_reads_it() -> None:
    text = b'\xef\xbb\xbf{"time": 1}'
    assert jsontext.loads(text) == json.loads(text) == {"time": 1}


@pytest.mark.parametrize(
    "text",
    [b'{"time": 1e999}', b'{"time": NaN}', '{"time": -Infinity}', b"[Infinity]",
     b"[" * 1100 + b"]" * 1100, b'\xef\xbb\xbf' + b"[" * 1100 + b"]" * 1100,
     b'{"a": ' * 65 + b"1" + b"}" * 65, b"9" * 400, b"[-" + b"9" * 400 + b"]",
     b'["\\ud800"]', b'\xef\xbb\xbf{"\\udc00": 1}'],
)  # fmt: skip
def test_non_numbers_overflow_and_deep_nesting_are_not_json(text: bytes | str) -> None:
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads(text)


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_fine() -> None:
    assert jsontext.loads(b"[" * 64 + b"]" * 64) is not None
    assert jsontext.loads(b'["' + b"[" * 2000 + b'"]') == ["[" * 2000]


@pytest.mark.parametrize("text", [b"{", b'{"a": 1,}', b"\xff\xfe{}", b"", "[1] x"])
def test_what_is_not_json_raises_value_error(text: bytes | str) -> None:
    with pytest.raises(ValueError):
        jsontext.loads(text)
