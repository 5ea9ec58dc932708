"""keys/tokens.py and keys/peppers.py: every branch, plus properties over random secrets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akener.keys import tokens
from akener.keys.peppers import Peppers

HEX = "0123456789abcdef"
secrets_hex = st.text(alphabet=HEX, min_size=64, max_size=64)


def test_generated_keys_have_the_documented_format() -> None:
    keys = {tokens.generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert re.fullmatch(r"akener_[0-9a-f]{64}", key)
        assert tokens.is_well_formed(key)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "akener_",
        "akener_" + "a" * 63,
        "akener_" + "a" * 65,
        "akener_" + "A" * 64,
        "Akener_" + "a" * 64,
        "akenerx" + "a" * 64,
        "akener_" + "g" * 64,
        " akener_" + "a" * 63,
        "akener_" + "a" * 63 + "\n",
        "akener_" + "a" * 63 + "é",
        "akener_" + "٣" * 64,
    ],
)
def test_anything_else_is_not_a_key(value: str) -> None:
    assert not tokens.is_well_formed(value)


@given(secrets_hex)
def test_mask_keeps_length_and_shows_only_last_four(secret: str) -> None:
    key = tokens.PREFIX + secret
    masked = tokens.mask(key)
    assert len(masked) == len(key) == tokens.KEY_LENGTH
    assert masked.startswith(tokens.PREFIX)
    assert masked.endswith(secret[-4:])
    hidden = masked[len(tokens.PREFIX) : -4]
    assert set(hidden) == {tokens.MASK_CHAR}
    assert secret not in masked
    assert secret[:-4] not in masked


@given(secrets_hex, st.binary(min_size=1, max_size=64))
def test_digest_never_contains_the_secret(secret: str, pepper: bytes) -> None:
    key = tokens.PREFIX + secret
    digest = tokens.digest(key, pepper)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert secret not in digest
    assert secret[:16] not in digest


def test_digest_depends_on_the_pepper() -> None:
    key = tokens.generate_key()
    assert tokens.digest(key, b"one") != tokens.digest(key, b"two")
    assert tokens.digest(key, b"one") == tokens.digest(key, b"one")


def test_mask_refuses_a_non_key() -> None:
    with pytest.raises(ValueError, match="not an akener key"):
        tokens.mask("akener_short")


def test_table_shows_last_32_characters_of_the_masked_value() -> None:
    masked = tokens.mask(tokens.PREFIX + "0" * 60 + "beef")
    tail = tokens.table_tail(masked)
    assert len(tail) == 32
    assert tail == "*" * 28 + "beef"


def test_peppers_are_derived_per_version_and_tried_current_first() -> None:
    peppers = Peppers.from_secrets({1: b"old secret", 2: b"new secret"}, current=2)
    key = tokens.generate_key()
    candidates = peppers.candidates(key)
    assert candidates[0] == peppers.digest_current(key)
    assert len(set(candidates)) == 2
    assert peppers.by_version[1] != b"old secret"  # derived, never the raw secret
    older = Peppers.from_secrets({1: b"old secret"}, current=1)
    assert older.digest_current(key) == candidates[1]


def test_peppers_need_the_current_secret() -> None:
    with pytest.raises(ValueError, match="current secret"):
        Peppers.from_secrets({1: b"x"}, current=2)
