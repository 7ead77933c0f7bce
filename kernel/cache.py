"""The shared cache: Django's database cache with an atomic ``incr`` that keeps the entry's expiry.

Django's ``DatabaseCache.incr`` is ``get`` then ``set``: two web processes counting the same key
at once both read 4 and both write 5 (a rate limit that counts less than it sees), and the
``set`` gives the key the default timeout (300 s), so a 10-minute window forgot its count after
5 quiet minutes. Here the row is locked (``SELECT … FOR UPDATE``) for the read-modify-write and
the new value keeps the expiry the entry had. django-ratelimit and the thank-you page count in it.

Nothing live is ever culled. Django's database cache, once it holds more than ``MAX_ENTRIES``
rows, deletes the expired ones and then a third of the live ones, those whose keys sort first:
the rate-limit counters (``rl:…``) and the thank-you claims. Seven client addresses making
lookups were enough to reset every counter (a limited client served again at once) and to drop a
claim. Here a full table only loses its *expired* rows. Every entry this cache holds has an expiry
(a counter its window, a claim twice the thank-you window), so the table holds at most what was
written within the longest of them, and an attacker's extra keys cost rows, never anyone's limit.
(``CULL_FREQUENCY = 0`` would not help: it empties the whole table, counters included.) The
nightly retention job deletes expired rows too (``submissions.services.lifecycle``).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone


class AtomicDatabaseCache(DatabaseCache):
    def _cull(self, db, cursor, now, num):
        # Expired rows only: a live counter or claim is never dropped to make room (docstring).
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        cursor.execute(
            f"DELETE FROM {table} WHERE expires < %s",  # noqa: S608 - the table name is ours, quoted
            [connection.ops.adapt_datetimefield_value(now)],
        )

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        cache_key = self.make_and_validate_key(key, version=version)
        with transaction.atomic(using=db):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT expires FROM {table} WHERE cache_key = %s FOR UPDATE", [cache_key])  # noqa: S608 - the table name is ours, quoted
                row = cursor.fetchone()
            value = self.get(key, self._missing_key, version=version) if row else self._missing_key
            if value is self._missing_key:
                raise ValueError(f"Key '{key}' not found")
            expires = row[0]
            if timezone.is_naive(expires):
                expires = timezone.make_aware(expires, timezone.utc)
            remaining = (expires - timezone.now()).total_seconds()
            new_value = value + delta
            # Keep the entry's own expiry (an entry that would outlive the year 9999 stays so).
            self.set(key, new_value, timeout=max(1.0, remaining) if expires.year < 9999 else None, version=version)
        return new_value
