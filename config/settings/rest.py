"""The REST API: Django REST framework, its JSON Web Tokens, and the OpenAPI schema."""

import os
from datetime import timedelta

from config.settings.environment import env_integer
from config.settings.security import SECRET_KEY

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: one parser per input kind, and the OpenAPI schema documents exactly what is read.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per client address: login, refresh, sign-ups, logout, password change, the admin's login.
        "auth": os.environ.get("THROTTLE_AUTH", "20/min"),
        # Per username: every password check (the API's login and password change, the admin's login).
        "login": os.environ.get("THROTTLE_LOGIN", "10/min"),
        "writes": os.environ.get("THROTTLE_WRITES", "120/min"),
    },
    # The client's address is the peer's, as config/proxies.py set it: DRF never reads
    # X-Forwarded-For itself (its default, None, would take the header whole from anyone).
    "NUM_PROXIES": 0,
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_integer("JWT_ACCESS_SECONDS", "900", 10, 365 * 86400)),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env_integer("JWT_REFRESH_SECONDS", str(7 * 86400), 10, 10 * 365 * 86400)
    ),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Home services real-time backend",
    "DESCRIPTION": (
        "REST side of the platform. The Socket.IO events: the AsyncAPI 3 document at "
        "[/api/asyncapi.json](/api/asyncapi.json) ([YAML](/api/asyncapi.yaml)); README.md explains them."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own (required fields, minLength of non-blank text).
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "CAMELIZE_NAMES": False,
}
