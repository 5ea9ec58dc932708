"""Pure pieces of the edges: Authorization parsing and the header encoding of key names."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akener.authz.handler import header_name
from akener.keys import tokens
from akener.verify.bearer import bearer_credential


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Bearer abc", "abc"),
        (b"bearer abc", "abc"),
        (b"BEARER   abc  ", "abc"),
        (b"Bearer", None),
        (b"Bearer a b", None),
        (b"Basic abc", None),
        (b"Bearer \xc3\xa9", None),
        (b"", None),
    ],
)
def test_bearer_credential(value: bytes, expected: str | None) -> None:
    assert bearer_credential(value) == expected


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("GitHub Actions", b"GitHub Actions"),
        ("Café ☕", b"Caf%C3%A9 %E2%98%95"),
        ("100% sure", b"100%25 sure"),
        ("a/b:c", b"a/b:c"),
    ],
)
def test_header_name_is_ascii_and_reversible(name: str, encoded: bytes) -> None:
    assert header_name(name) == encoded
    assert unquote(encoded.decode("ascii")) == name


@given(pepper=st.binary(min_size=0, max_size=200), key=st.text(alphabet="akener_0123456789abcdef"))
def test_fast_digester_equals_hmac(pepper: bytes, key: str) -> None:
    assert tokens.digester(pepper)(key) == tokens.digest(key, pepper)
