"""Change notifications from other akener versions are read, or safely over-forget; never crash."""

from __future__ import annotations

import pytest

from akener.keys.events import read_change_payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("3f9c0a1b2c3d4e5f60718293a4b5c6d7", {"3f9c0a1b2c3d4e5f60718293a4b5c6d7"}),
        ('{"key_id": "abc", "kind": "key.renamed", "new_field": [1, 2]}', {"abc"}),
        ('{"key_ids": ["a", "b"], "kind": "keys.bulk"}', {"a", "b"}),
        ('{"kind": "webhook.delivered", "id": 7}', set()),  # not about keys: nothing to forget
        ("{}", set()),
    ],
)
def test_payloads_name_their_keys_and_unknown_fields_are_ignored(
    payload: str, expected: set[str]
) -> None:
    assert read_change_payload(payload) == frozenset(expected)


@pytest.mark.parametrize(
    "payload",
    ["", "not json {", "[1, 2]", '"abc"', '{"key_id": 5}', '{"key_ids": "abc"}', "a b", "x" * 65],
)
def test_unreadable_payloads_mean_forget_everything(payload: str) -> None:
    assert read_change_payload(payload) is None
