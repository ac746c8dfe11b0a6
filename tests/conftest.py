"""Fixtures: users per role, an API client, the captured emits, the live ASGI server."""

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from config.realtime import emit as emit_module
from tests.factories import PartnerFactory, ServiceFactory, StaffFactory, UserFactory
from tests.live import LiveServer, check_server_logs


@pytest.fixture
def service(db: Any) -> Any:
    return ServiceFactory(name="House Cleaning")


@pytest.fixture
def customer(db: Any) -> Any:
    return UserFactory(username="alice", first_name="Alice")


@pytest.fixture
def other_customer(db: Any) -> Any:
    return UserFactory(username="bob", first_name="Bob")


@pytest.fixture
def staff(db: Any) -> Any:
    return StaffFactory(username="ops")


@pytest.fixture
def partner(db: Any, service: Any) -> Any:
    return PartnerFactory(user__username="pat", user__first_name="Pat", name="Pat", services=[service])


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(api: APIClient) -> Any:
    def login(user: Any) -> APIClient:
        api.force_authenticate(user)
        return api

    return login


class Emitted:
    """What the emit entry point delivered, as if the test's transaction had committed.

    The test runs inside one outer transaction, so on-commit callbacks wait in
    ``connection.run_on_commit``; reading runs those whose savepoints survived
    (a refused transition rolls its own back, so its events never show).
    """

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def _flush(self) -> None:
        from django.db import connection

        pending, connection.run_on_commit[:] = list(connection.run_on_commit), []
        for _sids, callback, _robust in pending:
            callback()

    def all(self) -> list[dict[str, Any]]:
        self._flush()
        return self.seen

    def named(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.all() if m.get("event") == name]

    def controls(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.all() if m["method"] == method]


@pytest.fixture(autouse=True)
def _emitted_payloads_follow_the_asyncapi_document() -> Iterator[None]:
    """Every payload a service emits during any test validates against the event catalogue
    (server processes check their own: ``EMIT_VALIDATION``, and ``_server_logs_are_clean``)."""
    from config.realtime import catalogue

    wrong: list[str] = []

    def check(message: dict[str, Any]) -> None:
        if message.get("method") == "emit":
            wrong.extend(catalogue.violations(message))

    emit_module._observers.append(check)
    yield
    emit_module._observers.remove(check)
    assert not wrong, wrong[:5]


@pytest.fixture(autouse=True)
def _server_logs_are_clean(request: Any) -> Iterator[None]:
    """After each test, what every server the suite started wrote meanwhile (server processes,
    module-scoped ones included; the in-process live server; ``make cluster``'s workers) holds no
    traceback and no ERROR line (a payload outside the catalogue is one), after a short settle so
    a late traceback fails the test that set it off, unless the test names it with
    ``@pytest.mark.server_errors(pattern, ...)``: a fault it causes on purpose."""
    yield
    allowed = [p for marker in request.node.iter_markers("server_errors") for p in marker.args]
    _wait_for_the_live_servers_orm()
    problems = check_server_logs(allowed)
    assert not problems, "servers logged:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="module", autouse=True)
def _server_logs_are_clean_when_the_module_ends(request: Any) -> Iterator[None]:
    """Set up before, so torn down after, a module's own fixtures: what a module-scoped server
    logged while it stopped fails the module's last test (as an error in teardown)."""
    yield
    allowed = [p for marker in request.node.iter_markers("server_errors") for p in marker.args]
    problems = check_server_logs(allowed)
    assert not problems, "servers logged as the module's fixtures stopped:\n" + "\n".join(problems[:20])


def _wait_for_the_live_servers_orm() -> None:
    import time

    from config.realtime.orm import orm_in_flight
    from config.realtime.presence import presence

    deadline = time.monotonic() + 5
    # The offline write of users whose sockets the test closed last (presence's, a moment later), then
    # whatever is in flight: before the database is flushed and blocked for the next test.
    while any(presence.offline.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    while orm_in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def emitted(db: Any) -> Iterator[Emitted]:
    captured = Emitted()
    emit_module._observers.append(captured.seen.append)
    yield captured
    emit_module._observers.remove(captured.seen.append)


def events_named(captured: Emitted, name: str) -> list[dict[str, Any]]:
    return captured.named(name)


@pytest.fixture(autouse=True)
def _live_server_settles() -> Iterator[None]:
    """After each test the in-process server finishes the ORM work the test set off (a control
    message's recheck, a disconnect's presence write) before the database is flushed: a query
    in flight across two tables deadlocks with the flush's TRUNCATE."""
    yield
    import time

    from config.realtime.orm import orm_in_flight

    time.sleep(0.05)  # a control message on its way to the server's loop
    deadline = time.monotonic() + 5
    while orm_in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup: Any) -> Iterator[str]:
    """One real ASGI server for the whole session (python-socketio's manager binds to its loop).

    It depends on ``django_db_setup`` so it stops, closing its connections,
    before the test database is dropped.
    """
    live = LiveServer().start()
    yield live.url
    live.stop()


@pytest.fixture(scope="session", autouse=True)
def _test_database_drops_cleanly(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """After every test (and the live server's stop), before the test database is dropped:
    close this process's pooled connections, then name and end any session still on it.

    A session left there makes the drop fail ("is being accessed by other users"): seen in
    CI now and then, with every test green. The name says which process held it (each sets
    ``application_name``), so the next time it happens the log says where to look."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        default = connections["default"]
        if default.vendor != "postgresql":
            return
        name = default.settings_dict["NAME"]
        for connection in connections.all():
            connection.close()
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()
        import psycopg

        params = {k: v for k, v in default.get_connection_params().items() if k not in ("pool", "dbname")}
        with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
            stray = admin.execute(
                "SELECT pid, application_name, state, left(query, 80) FROM pg_stat_activity WHERE datname = %s",
                [name],
            ).fetchall()
            for pid, application, state, query in stray:
                # Past pytest's capture: this is for the CI log.
                sys.__stderr__.write(f"\nstill on {name} at teardown: pid {pid} {application!r} {state} {query!r}\n")
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """With FAIL_ON_SKIP=1 (as in .ci/run) a skipped test fails the run: CI covers everything."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("FAIL_ON_SKIP") == "1" and skipped:
        print(f"\nFAIL_ON_SKIP: {skipped} test(s) were skipped; CI must run them all.")
        session.exitstatus = 1
