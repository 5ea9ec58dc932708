"""Small pure helpers of the dashboard."""

from __future__ import annotations

import pytest

from akener.web.deps import safe_next


@pytest.mark.parametrize(
    "value",
    ["", "https://evil.example/", "//evil.example", "/\\evil.example", "/\t/evil.example",
     "/\n/evil.example", "manage", " /manage"],
)  # fmt: skip
def test_unsafe_return_addresses_fall_back(value: str) -> None:
    assert safe_next(value) == "/manage/api-keys"


def test_local_paths_are_kept() -> None:
    assert safe_next("/manage/users?x=1") == "/manage/users?x=1"
