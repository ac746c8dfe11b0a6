"""Production settings refuse to start unsafe; the documented production environment passes check --deploy."""

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "api.example.com",
    "DATABASE_URL": "sqlite:///:memory:",
}


def python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Python in a process of its own, under ``config.settings`` and ``env`` alone."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", *PRODUCTION}}
    return subprocess.run(
        [sys.executable, *args],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return python("manage.py", *args, **env)


# How a server process starts: make serve's first step, and importing either application.
SERVERS = (("-m", "config.production"), ("-c", "import config.asgi"), ("-c", "import config.wsgi"))


@pytest.mark.parametrize(
    "override,names",
    [
        ({"SECRET_KEY": ""}, ["SECRET_KEY"]),
        ({"SECRET_KEY": "short"}, ["SECRET_KEY"]),
        ({"SECRET_KEY": "dev-insecure-secret-key-change-me-in-production-0123456789"}, ["SECRET_KEY"]),
        ({"DEBUG": ""}, ["SECRET_KEY"]),  # DEBUG unset is DEBUG off
        ({"ALLOWED_HOSTS": "*"}, ["ALLOWED_HOSTS"]),
        ({"ALLOWED_HOSTS": ""}, ["ALLOWED_HOSTS"]),
        ({"JWT_SIGNING_KEY": "tiny"}, ["JWT_SIGNING_KEY"]),
        ({"SOCKETIO_CORS_ORIGINS": "*"}, ["SOCKETIO_CORS_ORIGINS"]),
        # The old knob trusted X-Forwarded-For from any peer: refused, naming its replacement.
        ({"NUM_PROXIES": "1"}, ["NUM_PROXIES", "TRUSTED_PROXIES"]),
        ({"TRUSTED_PROXIES": "haproxy.internal"}, ["TRUSTED_PROXIES"]),  # addresses, not names
    ],
)
def test_debug_off_refuses_unsafe_settings(override, names):
    env = {**PRODUCTION, **override}
    for name in ("SECRET_KEY", "DEBUG"):
        if env[name] == "":
            del env[name]  # unset
    if "DEBUG" not in env:
        del env["SECRET_KEY"]  # an operator who forgot both
    for server in SERVERS:
        result = python(*server, **env)
        assert result.returncode != 0, server
        assert "ImproperlyConfigured" in result.stderr, (server, result.stderr[-2000:])
        for name in names:
            assert name in result.stderr


def test_offline_commands_need_no_production_secret():
    """makemigrations --check (as the tooling runs it) works with nothing set; only servers refuse."""
    result = manage("makemigrations", "--check", "--dry-run", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_documented_production_environment_passes_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_socketio_origins_default_to_the_servers_own():
    """No other browser origin by default; the server's own pages always connect (``cors_origins``)."""
    code = "from django.conf import settings; print(settings.SOCKETIO['CORS_ALLOWED_ORIGINS'])"
    result = manage("shell", "-c", code, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_map_tiles_come_from_nowhere_in_production_unless_the_operator_names_a_service():
    """Which tiles a staff browser asks for tells the tile server where a customer lives: a
    production server draws none by default; debug (make run) uses OpenStreetMap's."""
    code = "from django.conf import settings; print(repr(settings.MAP_TILE_URL))"
    production = manage("shell", "-c", code, **PRODUCTION)
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip().splitlines()[-1] == "''"
    named = manage("shell", "-c", code, **PRODUCTION, MAP_TILE_URL="https://tiles.example.com/{z}/{x}/{y}.png")
    assert named.stdout.strip().splitlines()[-1] == "'https://tiles.example.com/{z}/{x}/{y}.png'"
    debug = manage("shell", "-c", code, DEBUG="1")
    assert debug.stdout.strip().splitlines()[-1] == "'https://tile.openstreetmap.org/{z}/{x}/{y}.png'"


def test_debug_mode_uses_this_checkouts_own_key():
    from django.conf import settings

    from config.settings import _CHECKOUT_KEY_FILE, _PUBLISHED_KEYS

    assert _CHECKOUT_KEY_FILE.read_text().strip() == settings.SECRET_KEY
    assert len(settings.SECRET_KEY) >= 50 and settings.SECRET_KEY not in _PUBLISHED_KEYS
    tracked = subprocess.run(["git", "ls-files", ".secret_key"], capture_output=True, text=True, check=False)
    assert tracked.stdout == ""  # ignored: never in the repository


@pytest.mark.parametrize(
    "name,value",
    [
        ("SAFETY_ESCALATE_SECONDS", "0"),  # every sweep would send every open alert again
        ("SAFETY_ESCALATE_SECONDS", "-5"),
        ("SAFETY_ESCALATE_SECONDS", "inf"),  # every raise would fail (OverflowError): no SOS stored at all
        ("SAFETY_ESCALATE_SECONDS", "1e12"),  # past year 9999: the same
        ("SAFETY_ESCALATE_SECONDS", "soon"),
        ("SAFETY_SWEEP_INTERVAL", "0"),  # a loop of queries without a pause, on every process
        ("SAFETY_SWEEP_INTERVAL", "nan"),
        ("SAFETY_SWEEP_INTERVAL", ""),
        ("TRACE_PRUNE_INTERVAL", "0"),  # DELETEs without a pause on every process
        ("TRACE_PRUNE_INTERVAL", "-1"),
        ("TRACE_RETENTION_DAYS", "0"),  # every live job's trace deleted as it is recorded
        ("TRACE_RETENTION_DAYS", "inf"),
        ("TRACE_MIN_SECONDS", "-1"),  # every fix a point
        ("ARRIVAL_RADIUS_METERS", "nan"),  # partner:nearby never sent
        ("ARRIVAL_RADIUS_METERS", "-150"),
        ("SHUTDOWN_TIMEOUT", "1"),  # the database cut off at once: a stop writes nothing it buffered
        ("SHUTDOWN_TIMEOUT", "nan"),
        ("ACCESS_RECHECK_SECONDS", "0"),  # every socket's rights read again without a pause
        ("ACCESS_RECHECK_SECONDS", "nan"),  # never rechecked: a lost notification unbounded
        ("ACCESS_RECHECK_SECONDS", "-60"),
        ("LOCATION_FLUSH_INTERVAL", "0"),  # the flush loop spins on every process
        ("LOCATION_FLUSH_INTERVAL", "inf"),  # buffered locations never written
        ("LOCATION_FLUSH_INTERVAL", "5s"),
        ("PRESENCE_HEARTBEAT", "0"),
        ("RELAY_RECONCILE_INTERVAL", "-1"),
        ("DISPATCH_SWEEP_INTERVAL", "0"),
        ("DASHBOARD_PUSH_INTERVAL", "nan"),
        ("DB_POOL_SIZE", "0"),  # every request UNAVAILABLE
        ("SOCKETIO_DB_THREADS", "2.5"),  # a count is a whole number
        ("PRESENCE_TTL", "-90"),  # every partner offline as written
        ("RATE_DEFAULT", "0"),  # every event refused
        ("RATE_SAFETY", "0"),  # an SOS refused (contract 10.3: never below one per 10 s)
        ("JWT_ACCESS_SECONDS", "1e400"),  # inf: the lifetime's timedelta fails at start, unnamed
        ("SECURE_HSTS_SECONDS", "-1"),
        ("PLATFORM_COMMISSION", "1.5"),  # a partner's earning negative
        ("PLATFORM_COMMISSION", "-0.2"),
        ("PLATFORM_COMMISSION", "NaN"),  # every completion fails at its earning's write
        ("PLATFORM_COMMISSION", "20%"),  # an InvalidOperation at start, naming nothing
        ("PLATFORM_COMMISSION", ""),
    ],
)
def test_a_setting_that_would_flood_wipe_or_break_is_refused_at_start(name, value):
    result = python("-c", "import config.settings", DEBUG="1", **{name: value})
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr[-1500:]


def unbounded_reads(package: Path) -> dict[str, list[str]]:
    """Each module of the settings package that reads a number from the environment with a bare
    ``int()`` or ``float()``: its name and the calls."""
    found = {}
    for path in sorted(package.glob("*.py")):
        source = path.read_text()
        calls = re.findall(r"\b(?:int|float|Decimal)\(\s*os\.environ[^)]*\)", source)
        calls += re.findall(r"\b(?:int|float)\(\s*_?env\b[^)]*\)", source)
        if calls:
            found[path.name] = calls
    return found


def test_no_number_is_read_from_the_environment_unbounded():
    """Every number the settings read from the environment goes through ``env_number`` or
    ``env_integer``: a bare ``float()`` took 0, negative, nan and inf (a loop that spins, a limit that
    refuses everything, a write never made) and named nothing when it failed."""
    from config import settings

    package = Path(settings.__file__).parent
    assert unbounded_reads(package) == {}
    # Every module of the package is scanned: the ones that read numbers are among them.
    readers = {path.name for path in package.glob("*.py") if "env_number(" in path.read_text()}
    assert {"realtime.py", "product.py", "database.py"} <= readers


def test_the_scan_finds_a_bare_number_in_any_module_of_the_package(tmp_path):
    (tmp_path / "__init__.py").write_text("from .late import *\n")
    (tmp_path / "late.py").write_text('import os\nX = float(os.environ.get("X", "1"))\nY = int(env("Y"))\n')
    assert unbounded_reads(tmp_path) == {"late.py": ['float(os.environ.get("X", "1")', 'int(env("Y")']}


def test_each_setting_is_defined_in_one_module_of_the_package():
    """A setting assigned in two modules would be decided by the order ``__init__`` imports them."""
    from config import settings

    where: dict[str, list[str]] = {}
    for path in sorted(Path(settings.__file__).parent.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    where.setdefault(target.id, []).append(path.name)
    assert {name: files for name, files in where.items() if len(files) > 1} == {}
    assert "SOCKETIO" in where and "DATABASES" in where and "LOGGING" in where


def test_bounded_settings_take_sane_values():
    code = (
        "from config import settings as s; print(s.SAFETY_ESCALATE_SECONDS, s.SAFETY_SWEEP_INTERVAL, "
        "s.TRACE_RETENTION_DAYS, s.ARRIVAL_RADIUS_METERS)"
    )
    env = {"SAFETY_ESCALATE_SECONDS": "30", "SAFETY_SWEEP_INTERVAL": "0.5", "TRACE_RETENTION_DAYS": "30"}
    result = python("-c", code, DEBUG="1", ARRIVAL_RADIUS_METERS="200", **env)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split() == ["30.0", "0.5", "30.0", "200.0"]
    code = (
        "from config import settings as s; print(s.ACCESS_RECHECK_SECONDS, s.LOCATION_FLUSH_INTERVAL, "
        "repr(s.DB_POOL_SIZE), repr(s.SOCKETIO['DB_THREADS']), s.RATE_LIMITS['safety:alert'][0], "
        "s.RATE_LIMITS['location:update'][0])"
    )
    env = {"ACCESS_RECHECK_SECONDS": "30", "LOCATION_FLUSH_INTERVAL": "0.5", "DB_POOL_SIZE": "5", "RATE_SAFETY": "5"}
    # A limit set out of the way, as the benches do (bench/inbound.py), is taken.
    result = python("-c", code, DEBUG="1", SOCKETIO_DB_THREADS="8.0", RATE_LOCATION="1000000000", **env)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split() == ["30.0", "0.5", "5", "8", "5", "1000000000"]


@pytest.mark.parametrize(
    "simple_jwt,named",
    [
        ({"ALGORITHM": "RS256", "VERIFYING_KEY": "-"}, "ALGORITHM must be HS256, HS384 or HS512, not 'RS256'"),
        ({"JWK_URL": "https://auth.example.com/.well-known/jwks.json"}, "JWK_URL must be unset"),
        ({"SIGNING_KEY": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}, "SIGNING_KEY is no HS256"),
        ({"ALGORITHM": "HS257"}, "ALGORITHM 'HS257': Unrecognized algorithm type 'HS257'"),
        ({"SIGNING_KEY": None}, "SIGNING_KEY must be a string, not NoneType"),
        ({"SIGNING_KEY": "abc"}, "SIGNING_KEY is too short: The HMAC key is 3 bytes long"),
        ({"ALGORITHM": "HS512", "SIGNING_KEY": "k" * 50}, "SIGNING_KEY is too short: The HMAC key is 50 bytes"),
    ],
)
def test_a_token_setting_sockets_cannot_check_is_refused_at_start(tmp_path, simple_jwt, named):
    """SIMPLE_JWT that simplejwt accepts for REST but the socket token check cannot use: the
    server refuses to start and names the setting (it failed every connect, from the first)."""
    (tmp_path / "jwt_settings.py").write_text(
        f"from config.settings import *  # noqa\nSIMPLE_JWT = {{**SIMPLE_JWT, **{simple_jwt!r}}}\n"
    )
    env = {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "jwt_settings", "PYTHONPATH": str(tmp_path)}
    for server in SERVERS[:2]:  # make serve's first step, the ASGI application (WSGI has no sockets)
        result = python(*server, **env)
        assert result.returncode != 0, (server, result.stdout)
        assert "ImproperlyConfigured: SIMPLE_JWT: socket connects check" in result.stderr, result.stderr[-1500:]
        assert named in result.stderr, (server, result.stderr[-1500:])
    assert python(*SERVERS[0], DEBUG="1").returncode == 0  # the shipped settings start
