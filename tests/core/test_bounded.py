from __future__ import annotations

from graphql_todos.core.bounded import LRU


def test_the_least_recently_used_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the oldest
    cache.put("c", 3)
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)


def test_size_zero_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(0)
    cache.put("a", 1)
    assert len(cache) == 0
    assert cache.get("a", -1) == -1


def test_none_is_kept_and_made_once() -> None:
    cache: LRU[str, int | None] = LRU(4)
    made: list[str] = []

    def make() -> None:
        made.append("x")

    assert cache.get_or_make("x", make) is None
    assert cache.get_or_make("x", make) is None
    assert made == ["x"]
    assert "x" in cache and cache.get("x", 7) is None


def test_pop_and_clear_forget() -> None:
    cache: LRU[int, str] = LRU(3)
    cache.put(1, "one")
    cache.put(2, "two")
    assert cache.pop(1) == "one"
    assert cache.pop(1) is None
    cache.clear()
    assert len(cache) == 0
