"""The one duration parser: units required, 0 only where it means none, bounds enforced."""

from __future__ import annotations

from datetime import timedelta

import pytest

from akener.durations import DurationError, describe, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4w", timedelta(weeks=4)),
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_durations_with_a_unit_are_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("90", "needs a unit"),
        ("1", "needs a unit"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("0", "needs a unit"),  # zero is refused unless the caller says it means "none"
        ("0d", "longer than 0"),
        ("-5m", "not a duration"),
        ("1.5h", "not a duration"),
        ("5 m", "not a duration"),
        ("3y", "not a duration"),
        ("soon", "not a duration"),
        ("999999999w", "at most 36500 days"),
    ],
)
def test_bad_durations_are_refused_with_a_clear_message(text: str, words: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text, "--expires-in")
    assert words in str(caught.value)
    assert str(caught.value).startswith("--expires-in ")
    assert (
        "such as 4w, 90d" in str(caught.value)
        or "at most" in str(caught.value)
        or ("longer than" in str(caught.value))
    )


def test_zero_alone_means_none_only_where_allowed() -> None:
    assert parse_duration("0", "--grace", allow_zero=True) == timedelta(0)
    assert parse_duration("0s", "--grace", allow_zero=True) == timedelta(0)
    with pytest.raises(DurationError, match="needs a unit"):
        parse_duration("00", "--grace", allow_zero=True)
    with pytest.raises(DurationError, match=r"or 0 for none"):
        parse_duration("60", "--grace", allow_zero=True)


def test_bounds_are_enforced_and_named_in_words() -> None:
    week = timedelta(days=7)
    assert parse_duration("7d", maximum=week) == week
    with pytest.raises(DurationError, match="at most 7 days"):
        parse_duration("8d", "--grace", maximum=week)
    with pytest.raises(DurationError, match="at least 1 hour"):
        parse_duration("30m", minimum=timedelta(hours=1))


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3600, 86400, 7 * 86400, 90 * 86400, 3661])
def test_format_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value), allow_zero=True) == value


def test_describe_uses_words() -> None:
    assert describe(timedelta(days=1)) == "1 day"
    assert describe(timedelta(minutes=90)) == "90 minutes"
