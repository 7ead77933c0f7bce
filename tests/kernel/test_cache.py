"""kernel/cache.py: the shared cache's counter is atomic across connections and keeps the expiry
its key was added with (the rate limits and the thank-you claims count in it: their behaviour is
tested in tests/security/test_rate_limits.py). Real PostgreSQL, the real cache table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches

from tests.builders.threads import at_once

pytestmark = pytest.mark.django_db


def _expires(cache, key: str):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT expires FROM {cache._table} WHERE cache_key = %s", [cache.make_key(key)])  # noqa: S608
        return cursor.fetchone()[0]


def test_the_shared_cache_counter_keeps_its_window(settings):
    """Django's database cache gave an incremented key the default 300 s, so a 10-minute count was
    forgotten after 5 quiet minutes; the counter keeps the expiry the key was added with."""
    cache = caches[settings.RAIOX_SHARED_CACHE]
    cache.add("count", 0, timeout=3600)
    before = _expires(cache, "count")
    assert cache.incr("count") == 1 and cache.incr("count", 5) == 6
    assert _expires(cache, "count") >= before - timedelta(seconds=1)
    with pytest.raises(ValueError):
        cache.incr("never-added")


@pytest.mark.django_db(transaction=True)
def test_the_shared_cache_counts_every_concurrent_request(settings):
    """Web processes count the same address at once: no increment may be lost (row lock)."""
    cache = caches[settings.RAIOX_SHARED_CACHE]
    cache.add("busy", 0, timeout=3600)

    def count() -> None:
        for _ in range(25):
            cache.incr("busy")

    at_once([count] * 4, timeout=30)
    assert cache.get("busy") == 100
    cache.clear()
