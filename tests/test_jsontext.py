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


@pytest.mark.parametrize(
    "text",
    [b'{"time": 1e999}', b'{"time": NaN}', b'\xef\xbb\xbf{"time": 1}', '{"time": -Infinity}'],
)
def test_what_orjson_refuses_reads_as_json_reads_it(text: bytes | str) -> None:
    got, want = jsontext.loads(text), json.loads(text)
    assert repr(got) == repr(want)  # repr: NaN is not equal to itself


@pytest.mark.parametrize("text", [b"{", b'{"a": 1,}', b"\xff\xfe{}", b"", "[1] x"])
def test_what_is_not_json_raises_value_error(text: bytes | str) -> None:
    with pytest.raises(ValueError):
        jsontext.loads(text)
