"""The shared cache: Django's database cache with an atomic ``incr`` that keeps the entry's expiry.

Django's ``DatabaseCache.incr`` is ``get`` then ``set``: two web processes counting the same key
at once both read 4 and both write 5 (a rate limit that counts less than it sees), and the
``set`` gives the key the default timeout (300 s), so a 10-minute window forgot its count after
5 quiet minutes. Here the row is locked (``SELECT … FOR UPDATE``) for the read-modify-write and
the new value keeps the expiry the entry had. django-ratelimit and the thank-you page count in it.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone


class AtomicDatabaseCache(DatabaseCache):
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
