"""Settings, read from the environment: ``DJANGO_SETTINGS_MODULE=config.settings``.

Embedded defaults (SQLite, in-memory Channels layer) need nothing installed;
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis. Nothing here
exists only in production.

One module per concern; a new setting goes in the one whose name says what it is about:

- ``environment``: how a value is read (``env_number``, ``env_integer``...), ``BASE_DIR``, ``DEBUG``;
- ``security``: secrets, hosts, proxies, TLS, cookies, who may read /metrics;
- ``application``: Django's apps, middleware, URLs, templates, static files, HTTP admission;
- ``database``: ``DATABASES`` and the connection pool;
- ``broker``: Redis, the cache and the channel layer;
- ``realtime``: Socket.IO, recovery, per-connection bounds, presence, event rate limits;
- ``passwords``: the hashers, their pool, the validators;
- ``rest``: Django REST framework, JWT, the OpenAPI schema;
- ``product``: the platform's rules (dispatch, jobs, traces, safety alerts, money, maps);
- ``logs``: ``LOGGING``;
- ``production_checks``: ``PRODUCTION_PROBLEMS``, what keeps a server from starting with DEBUG off.

Each module imports what it reads from the others by name; this one only puts them together.
An upper-case name is defined in one module only (tests/config/test_settings.py).
"""

# ``import *`` leaves out names that start with "_". The tests read the key file and the published
# keys; ``_DEFAULT_DATABASE`` and ``_RATE_WINDOW`` are upper case, so Django took them as settings
# from the one file this package replaced: kept, so that ``django.conf.settings`` holds what it held.
from config.settings.application import *  # noqa: F403
from config.settings.broker import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.database import _DEFAULT_DATABASE  # noqa: F401
from config.settings.environment import *  # noqa: F403
from config.settings.logs import *  # noqa: F403
from config.settings.passwords import *  # noqa: F403
from config.settings.product import *  # noqa: F403
from config.settings.production_checks import *  # noqa: F403
from config.settings.realtime import *  # noqa: F403
from config.settings.realtime import _RATE_WINDOW  # noqa: F401
from config.settings.rest import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.security import _CHECKOUT_KEY_FILE, _PUBLISHED_KEYS  # noqa: F401
