"""The FHIR read cache (gateway/fhir_api/read_cache.py) on its own: no database, a fake clock."""

from __future__ import annotations

import pytest

from gateway.fhir_api.read_cache import (
    ANY_TYPE,
    ENTRY_OVERHEAD,
    ReadCache,
    read_dependency,
    read_key,
    type_dependencies,
)

P1 = ("Patient", "p1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ReadCache:
    cache = ReadCache(max_bytes=1_000_000, ttl=60.0, clock=clock)
    cache.enable()
    return cache


def put_read(cache: ReadCache, resource_type: str, resource_id: str, value: object = "row") -> bool:
    return cache.put(
        read_key(resource_type, resource_id),
        value,
        100,
        read_dependency(resource_type, resource_id),
        cache.snapshot(),
    )


def put_search(cache: ReadCache, key: str, types: list[str | None], value: bytes = b"{}") -> bool:
    return cache.put(("search", key), value, len(value), type_dependencies(types), cache.snapshot())


def other_bucket_id(resource_type: str, resource_id: str) -> str:
    """An id of ``resource_type`` whose read entries live in another bucket than ``resource_id``'s."""
    taken = read_dependency(resource_type, resource_id)
    return next(f"other-{n}" for n in range(100) if read_dependency(resource_type, f"other-{n}") != taken)


def test_disabled_until_enabled(clock: Clock) -> None:
    cache = ReadCache(max_bytes=1_000_000, clock=clock)
    assert not cache.enabled
    assert cache.snapshot() is None
    assert cache.put(read_key(*P1), "row", 10, read_dependency(*P1), None) is False
    assert cache.get(read_key(*P1)) is None
    assert len(cache) == 0 and cache.stats.stored == 0
    cache.enable()
    assert cache.enabled and cache.snapshot() is not None


def test_put_then_get_counts_hits_and_misses(cache: ReadCache) -> None:
    assert cache.get(read_key(*P1)) is None
    assert put_read(cache, *P1, value="row-1")
    assert cache.get(read_key(*P1)) == "row-1"
    assert cache.get(read_key(*P1)) == "row-1"
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stored, cache.stats.raced) == (2, 1, 1, 0)
    assert len(cache) == 1 and cache.bytes == 100 + ENTRY_OVERHEAD


def test_a_put_of_the_same_key_replaces_the_entry(cache: ReadCache) -> None:
    assert put_read(cache, *P1, value="v1")
    assert put_read(cache, *P1, value="v2")
    assert cache.get(read_key(*P1)) == "v2"
    assert len(cache) == 1 and cache.bytes == 100 + ENTRY_OVERHEAD


def test_a_change_of_the_resource_invalidates_its_read_entry_only(cache: ReadCache) -> None:
    other = ("Patient", other_bucket_id(*P1))
    assert put_read(cache, *P1) and put_read(cache, *other)
    cache.changed(*P1)
    assert cache.get(read_key(*P1)) is None
    assert cache.get(read_key(*other)) == "row"
    assert len(cache) == 1  # the stale entry was dropped, not kept


@pytest.mark.parametrize(
    "changed, dropped",
    [
        pytest.param(("Observation", "o1"), True, id="observation"),
        pytest.param(("Patient", "p1"), False, id="patient"),
        pytest.param(("Encounter", "e1"), False, id="encounter"),
    ],
)
def test_a_search_entry_depends_on_the_types_it_touched(
    cache: ReadCache, changed: tuple[str, str], dropped: bool
) -> None:
    assert put_search(cache, "vitals", ["Observation"], b"bundle")
    cache.changed(*changed)
    assert (cache.get(("search", "vitals")) is None) is dropped


def test_a_search_with_an_include_depends_on_the_included_type(cache: ReadCache) -> None:
    assert type_dependencies(["Observation", "Patient", "Observation"]) == ("Observation", "Patient")
    assert put_search(cache, "with-patient", ["Observation", "Patient"])
    cache.changed("Encounter", "e1")
    assert cache.get(("search", "with-patient")) == b"{}"
    cache.changed("Patient", "p1")
    assert cache.get(("search", "with-patient")) is None


@pytest.mark.parametrize(
    "types",
    [pytest.param(["Observation", None], id="open-include"), pytest.param([ANY_TYPE], id="any-type")],
)
@pytest.mark.parametrize("changed_type", ["Patient", "Observation", "Provenance"])
def test_an_any_type_entry_is_invalidated_by_any_change(
    cache: ReadCache, types: list[str | None], changed_type: str
) -> None:
    assert type_dependencies(types) == (ANY_TYPE,)
    assert put_search(cache, "open", types)
    cache.changed(changed_type, "x1")
    assert cache.get(("search", "open")) is None


def test_a_read_entry_ignores_type_generations_and_a_search_entry_bucket_generations(
    cache: ReadCache,
) -> None:
    """A change of Patient/p1 drops the Patient searches and its own read, not an Observation search."""
    assert put_read(cache, *P1)
    assert put_search(cache, "obs", ["Observation"])
    assert put_search(cache, "pat", ["Patient"])
    cache.changed(*P1)
    assert cache.get(read_key(*P1)) is None
    assert cache.get(("search", "pat")) is None
    assert cache.get(("search", "obs")) == b"{}"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.changed(*P1), id="same-resource"),
        pytest.param(lambda c: c.changed("Condition", "c9"), id="any-other-resource"),
        pytest.param(lambda c: c.changed_everything(), id="everything"),
    ],
)
def test_a_put_after_a_change_since_the_snapshot_is_refused_as_raced(cache: ReadCache, change) -> None:
    snapshot = cache.snapshot()
    change(cache)
    stored = cache.put(read_key(*P1), "stale row", 100, read_dependency(*P1), snapshot)
    assert stored is False
    assert cache.stats.raced == 1 and cache.stats.stored == 0
    assert cache.get(read_key(*P1)) is None
    assert put_read(cache, *P1, value="fresh row")  # a snapshot taken after the change is kept
    assert cache.get(read_key(*P1)) == "fresh row"


def test_entries_expire_after_ttl(clock: Clock) -> None:
    cache = ReadCache(max_bytes=1_000_000, ttl=10.0, clock=clock)
    cache.enable()
    assert put_read(cache, *P1)
    clock.now += 7.4  # the cache may shorten an entry's life to spread expiries, never below 75 % of ttl
    assert cache.get(read_key(*P1)) == "row"
    clock.now += 2.6
    assert cache.get(read_key(*P1)) is None
    assert len(cache) == 0 and cache.bytes == 0


def test_max_bytes_evicts_the_least_recently_used(clock: Clock) -> None:
    entry = 100 + ENTRY_OVERHEAD
    cache = ReadCache(max_bytes=3 * entry, clock=clock)
    cache.enable()
    for name in ("a", "b", "c"):
        assert put_read(cache, "Patient", name, value=name)
    assert cache.get(read_key("Patient", "a")) == "a"  # a is now the most recently used; b the least
    assert put_read(cache, "Patient", "d", value="d")
    assert cache.get(read_key("Patient", "b")) is None
    assert [cache.get(read_key("Patient", n)) for n in ("a", "c", "d")] == ["a", "c", "d"]
    assert len(cache) == 3 and cache.bytes == 3 * entry <= cache.max_bytes


def test_an_entry_larger_than_max_bytes_is_not_kept(clock: Clock) -> None:
    cache = ReadCache(max_bytes=1000, clock=clock)
    cache.enable()
    assert put_read(cache, "Patient", "small")
    too_big = 1000 - ENTRY_OVERHEAD + 1
    stored = cache.put(("search", "big"), b"x", too_big, ("Observation",), cache.snapshot())
    assert stored is False
    assert cache.get(("search", "big")) is None
    assert cache.get(read_key("Patient", "small")) == "row"  # it did not push the others out
    assert cache.stats.stored == 1 and cache.stats.raced == 0
    assert cache.bytes <= cache.max_bytes


def test_disable_empties_and_refuses_until_enabled_again(cache: ReadCache) -> None:
    assert put_read(cache, *P1)
    before = cache.snapshot()
    cache.disable()
    assert not cache.enabled and len(cache) == 0 and cache.bytes == 0
    assert cache.snapshot() is None
    assert cache.get(read_key(*P1)) is None
    assert cache.put(read_key(*P1), "row", 100, read_dependency(*P1), before) is False
    cache.enable()
    assert len(cache) == 0
    assert cache.get(read_key(*P1)) is None
    # an answer whose queries started before the channel was lost is never kept, even once enabled again
    assert cache.put(read_key(*P1), "row", 100, read_dependency(*P1), before) is False
    assert put_read(cache, *P1)
    assert cache.get(read_key(*P1)) == "row"


def test_changed_everything_empties_the_cache(cache: ReadCache) -> None:
    assert put_read(cache, *P1)
    assert put_search(cache, "obs", ["Observation"])
    before = cache.snapshot()
    cache.changed_everything()
    assert cache.enabled
    assert len(cache) == 0 and cache.bytes == 0
    assert cache.get(read_key(*P1)) is None and cache.get(("search", "obs")) is None
    assert cache.put(read_key(*P1), "row", 100, read_dependency(*P1), before) is False
    assert put_read(cache, *P1)
    assert cache.get(read_key(*P1)) == "row"
