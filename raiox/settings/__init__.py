"""Raiox AI settings: every value from the environment, one module per concern.

``DJANGO_SETTINGS_MODULE=raiox.settings`` reads this package, which gathers the modules below;
each imports by name what it reads from another, so no setting depends on the order of the
imports. Defaults are safe for a developer's machine (DEBUG off unless asked for, an embedded
PostgreSQL, local files). Production sets ``DJANGO_ENV=production`` and must provide
``SECRET_KEY``; the full list of variables is in ``deploy/env.example`` and the README.

- ``env``: the readers (``env``, ``env_bool``, ``env_int``, ``env_float``, ``env_list``, ``env_rate``);
- ``base``: paths, environment, apps, middleware, templates, i18n, caches;
- ``database``: PostgreSQL and its backups;
- ``storage``: static files and media (Spaces or local files);
- ``queue``: django-q2 and the watches on it;
- ``security``: login lockout, CORS, CSP, proxies, rate-limit counter, /metrics, HTTPS;
- ``email``, ``logging``;
- ``integrations``: Jotform and the generic webhook;
- ``product``: every product knob (upload limits, matching, confidence, abuse limits, ...);
- ``api``: Django REST framework and the OpenAPI schema.
"""

from raiox.settings.api import *  # noqa: F403
from raiox.settings.base import *  # noqa: F403
from raiox.settings.database import *  # noqa: F403
from raiox.settings.email import *  # noqa: F403
from raiox.settings.integrations import *  # noqa: F403
from raiox.settings.logging import *  # noqa: F403
from raiox.settings.product import *  # noqa: F403
from raiox.settings.queue import *  # noqa: F403
from raiox.settings.security import *  # noqa: F403
from raiox.settings.storage import *  # noqa: F403
