"""The submissions admin: Django's autodiscovery imports this package, and importing each module
registers its ModelAdmin.

- ``submission``: the submissions list, the read-only detail and the confirm page;
- ``review_request``: the specialist-review queue and its answer page.

Both check the permissions named in ``submissions.access``.
"""

from submissions.admin import review_request, submission  # noqa: F401
