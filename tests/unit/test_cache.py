"""The key cache on its own: bounds, LRU order, invalidation, and the stale-write guard."""

from __future__ import annotations

import secrets

from akener.verify.cache import MISS, CachedKey, KeyCache


def entry(key_id: str = "k1", active: bool = True) -> CachedKey:
    return CachedKey(key_id, "name", frozenset({"a"}), active)


def test_unknown_entries_never_exceed_the_bound_and_evict_least_recently_used() -> None:
    cache = KeyCache(max_keys=10, max_unknown=100)
    first = "first"
    cache.put(first, None, cache.generation)
    for _ in range(5_000):
        cache.put(secrets.token_hex(32), None, cache.generation)
        cache.get(first)  # kept fresh: the least recently used go first
        assert cache.unknown_count <= 100
    assert cache.unknown_count == 100
    assert cache.get(first) is None  # still a known-unknown
    assert len(cache) == 100


def test_known_entries_are_bounded_too() -> None:
    cache = KeyCache(max_keys=3, max_unknown=3)
    for i in range(10):
        cache.put(f"d{i}", entry(f"k{i}"), cache.generation)
    assert len(cache) == 3
    assert cache.get("d0") is MISS
    assert cache.get("d9") is not MISS


def test_forget_by_id_drops_the_entry_and_blocks_an_older_read() -> None:
    cache = KeyCache()
    cache.put("d1", entry("k1"), cache.generation)
    started = cache.generation  # a database read starts here...
    cache.forget(frozenset({"k1"}))  # ...a change commits meanwhile...
    cache.put("d1", entry("k1"), started)  # ...and the read's (old) answer arrives
    assert cache.get("d1") is MISS


def test_untrusted_cache_answers_and_stores_nothing() -> None:
    cache = KeyCache()
    cache.put("d1", entry(), cache.generation)
    cache.distrust()
    assert cache.get("d1") is MISS
    cache.put("d1", entry(), cache.generation)
    assert cache.get("d1") is MISS
    cache.trust()
    assert cache.get("d1") is MISS  # trust starts from empty
    cache.put("d1", entry(), cache.generation)
    assert isinstance(cache.get("d1"), CachedKey)


def test_a_known_digest_replaces_its_negative_entry() -> None:
    cache = KeyCache()
    cache.put("d1", None, cache.generation)
    cache.put("d1", entry(), cache.generation)
    assert cache.unknown_count == 0
    assert isinstance(cache.get("d1"), CachedKey)
