"""The real ASGI server on a free loopback port, and real Socket.IO clients for it."""

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import socketio
import uvicorn
from rest_framework_simplejwt.tokens import AccessToken

from config.realtime.recovery_store import OFFSET

WAIT = 5.0  # every wait in the socket tests is bounded by this
UNKNOWN_BOOKING = "6f1c1d0e-0000-4000-8000-000000000000"  # a well-formed id no booking has
WS_PROTOCOL = "config.realtime.websocket_protocol:WebSocketProtocol"  # as make serve runs it
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, driven by Playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``config.asgi.application`` in a thread of the test process."""

    def __init__(self) -> None:
        from config.asgi import application

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from django.conf import settings

        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            ws=WS_PROTOCOL,
            ws_max_size=settings.SOCKETIO["MAX_HTTP_BUFFER_SIZE"],  # as make serve runs it
            ws_ping_interval=0,  # as make serve runs it: Engine.IO's heartbeat alone
            proxy_headers=False,  # as make serve runs it: config/proxies.py alone reads them
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="live-asgi")

    def start(self) -> "LiveServer":
        IN_PROCESS_LOG.install()
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def token_for(user: Any, lifetime: float | None = None, expires_at: int | None = None) -> str:
    """An access token for ``user``; ``expires_at`` (a Unix second) pins its ``exp`` exactly,
    where a ``lifetime`` is rounded down to a whole second by simplejwt."""
    token = AccessToken.for_user(user)
    if lifetime is not None:
        from datetime import timedelta

        token.set_exp(lifetime=timedelta(seconds=lifetime))
    if expires_at is not None:
        token["exp"] = expires_at
    return str(token)


class Client:
    """A python-socketio ``AsyncClient`` that records every event it receives."""

    def __init__(self, url: str, namespace: str, transports: list[str] | None = None) -> None:
        self.url = url
        self.namespace = namespace
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.offsets: list[tuple[str, str]] = []  # (event, offset) of the logged events received
        self._arrived = asyncio.Event()
        self.connect_error: Any = None
        self.sio.on("*", self._record, namespace=namespace)
        self.sio.on("connect_error", self._on_connect_error, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        # python-socketio hands the recovery offset (contract 8.3) over as a last argument.
        if len(args) > 1 and isinstance(args[-1], str) and OFFSET.match(args[-1]):
            *args, offset = args
            self.offsets.append((event, offset))
        self.events[event].append(args[0] if len(args) == 1 else list(args))
        self._arrived.set()

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    async def connect(
        self, token: str | None = None, headers: dict[str, str] | None = None, timeout: float = WAIT
    ) -> "Client":
        auth = {"token": token} if token is not None else None
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth=auth,
            headers=headers or {},
            transports=self.transports,
            wait_timeout=timeout,
        )
        return self

    async def call(self, event: str, data: Any = None, timeout: float = WAIT) -> Any:
        if data is None:
            return await self.sio.call(event, namespace=self.namespace, timeout=timeout)
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def wait_for(self, event: str, count: int = 1, timeout: float = WAIT, where: Any = None) -> list[Any]:
        """The first ``count`` payloads of ``event`` (matching ``where``); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [p for p in self.events.get(event, []) if where is None or where(p)]
            if len(found) >= count:
                return found[:count]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.namespace}: expected {count} {event!r}, got {self.events.get(event)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def socket_barrier(client: Client) -> None:
    """A round trip on ``client``'s own socket (a /customer one): the server queues its answer behind
    anything it queued for that socket before, so once the answer is in, a copy that was coming
    has come. A barrier for a negative check, where a sleep only hopes."""
    answer = await client.call("booking:track", UNKNOWN_BOOKING)
    assert answer["ok"] is False, answer


async def wait_until(predicate: Any, timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, Any]) -> AsyncIterator["asyncio.Task[Any]"]:
    """``work`` as a task for the block (a periodic loop under test), cancelled and awaited at its end."""
    task = asyncio.ensure_future(work)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def cluster_pids(data: str) -> list[int]:
    """A PostgreSQL cluster's postmaster (first line of its pid file) and every process it started."""
    with open(os.path.join(data, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry))
    return [postmaster, *children]


def pause(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@contextlib.contextmanager
def paused_postgres(cluster: dict[str, Any]) -> Iterator[Callable[[], None]]:
    """Every process of ``cluster`` (the ``own_postgres`` fixture) paused with SIGSTOP for the block:
    a database that does not answer (no RST, as a hung server or a partition), its open connections'
    backends included. Yields ``resume`` (SIGCONT before the block ends); resumed at its end whatever
    happened, so a failed test leaves no cluster stopped."""
    pids = cluster_pids(cluster["data"])
    pause(pids, signal.SIGSTOP)
    try:
        yield lambda: pause(pids, signal.SIGCONT)
    finally:
        pause(pids, signal.SIGCONT)


def eventually(predicate: Any, timeout: float = WAIT, what: str = "condition") -> None:
    """Synchronous poll (for ORM checks outside the event loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class ServerProcess:
    """A real server in its own process (uvicorn, or the WSGI app with ``wsgi=True``).

    Every one is registered in ``running``: after each test the ``_server_logs_are_clean``
    fixture reads what each wrote meanwhile and fails on a traceback or an ERROR line.
    """

    running: ClassVar[list["ServerProcess"]] = []

    def __init__(
        self, env: dict[str, str], wsgi: bool = False, port: int | None = None, command: list[str] | None = None
    ) -> None:
        """``port``: a given one (a restart on the port the clients know) instead of a free one;
        ``command``: another server's command line (daphne, runserver), serving on ``port``."""
        import os
        import subprocess
        import sys
        import tempfile

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if command is not None:
            cmd = command
        elif wsgi:
            cmd = [sys.executable, "-m", "tests.wsgi_server", str(self.port)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--ws",
                WS_PROTOCOL,
                "--ws-max-size",
                env.get("SOCKETIO_MAX_BUFFER", "1000000"),
                "--ws-ping-interval",
                "0",
                "--lifespan",
                "on",
                "--timeout-graceful-shutdown",
                env.get("SHUTDOWN_TIMEOUT", "10"),  # as make serve runs it
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-proxy-headers",
            ]
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        self.checked = 0  # how much of the log the fixture has read
        ServerProcess.running.append(self)

    def size(self) -> int:
        import os

        return os.path.getsize(self.log.name)

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def start(self) -> "ServerProcess":
        import urllib.request

        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/services/", timeout=1).read()
                return self
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.output()}") from None
                time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def unchecked_output(self) -> str:
        """What the server wrote since the last call (the log fixture's reading)."""
        text = self.output()
        new, self.checked = text[self.checked :], len(text)
        return new

    async def terminated_in(self, bound: float) -> float:
        """SIGTERM, as a deploy sends it: the seconds until the process exited (waited up to ``bound``)."""
        stopped = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.proc.wait, bound)
        return time.monotonic() - stopped

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def wait_for_log(server: ServerProcess, text: str, timeout: float = 10) -> str:
    """The first line of ``server``'s log that holds ``text``, waited for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in server.output().splitlines() if text in line]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the server's log:\n{server.output()[-2000:]}")


SERVER_LOG_PROBLEM = re.compile(r"Traceback \(most recent call last\)|\bERROR\b|\bCRITICAL\b")


def server_log_problems(text: str, allowed: list[str] = ()) -> list[str]:
    """The lines of a server's log that show something went wrong: a traceback, an ERROR or
    CRITICAL record (a payload outside the catalogue is one), unless a pattern allows it. A
    traceback belongs to the record before it, and is allowed with it."""
    patterns = [re.compile(p) for p in allowed]
    problems, record_allowed = [], False
    for line in text.splitlines():
        if LOG_RECORD.match(line):
            record_allowed = any(p.search(line) for p in patterns)
        elif line.startswith("Traceback") and record_allowed:
            continue
        if SERVER_LOG_PROBLEM.search(line) and not any(p.search(line) for p in patterns):
            problems.append(line)
    return problems


LOG_RECORD = re.compile(r"\d{4}-\d{2}-\d{2} ")


class InProcessLog(logging.Handler):
    """The in-process live server's log: every ERROR record of its threads (the server's loop,
    ``live-asgi``, and the manager's ORM threads), formatted as a server process writes it,
    traceback included. Records of the test's own threads are not its."""

    THREADS = ("live-asgi", "orm")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self.checked = 0

    def install(self) -> None:
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName and record.threadName.startswith(self.THREADS) and not self._harness(record):
            self.lines.append(self.format(record))

    @staticmethod
    def _harness(record: logging.LogRecord) -> bool:
        """pytest-django blocks the database between tests while the in-process server's
        periodic work (the presence heartbeat) goes on: a refusal of the harness, not a fault."""
        error = record.exc_info[1] if record.exc_info else None
        return isinstance(error, RuntimeError) and str(error).startswith("Database access not allowed")

    def size(self) -> int:
        return len(self.lines)

    def unchecked_output(self) -> str:
        new, self.checked = self.lines[self.checked :], len(self.lines)
        return "".join(line + "\n" for line in new)

    def finished(self) -> bool:
        return False


IN_PROCESS_LOG = InProcessLog()


class ClusterLogs:
    """The worker logs of a ``make cluster`` a test runs: every ``*.log`` in the directory of its
    ``CLUSTER_STATE`` (``worker-N.log``), read like a server process's log."""

    def __init__(self, state_file: Path) -> None:
        self.directory = Path(state_file).parent
        self.checked: dict[Path, int] = {}
        self.done = False

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.log"))

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files())

    def unchecked_output(self) -> str:
        text = []
        for path in self.files():
            content = path.read_text(errors="replace")
            start = self.checked.get(path, 0)
            self.checked[path] = len(content)
            text += [f"{line}  [{path.name}]" for line in content[start:].splitlines()]
        return "".join(line + "\n" for line in text)

    def finished(self) -> bool:
        return self.done


WATCHED: list[Any] = []  # log sources besides ServerProcess.running: the live server, clusters


def watch_cluster_logs(state_file: Path) -> ClusterLogs:
    """Read ``make cluster``'s worker logs after each test (call before the cluster starts)."""
    logs = ClusterLogs(state_file)
    WATCHED.append(logs)
    return logs


def log_sources() -> list[Any]:
    return [*ServerProcess.running, IN_PROCESS_LOG, *WATCHED]


def settle(sources: list[Any], quiet: float = 0.1, bound: float = 1.0) -> None:
    """Wait until no server process or cluster has written for ``quiet`` s (at most ``bound``):
    a traceback a test set off a moment before it ended belongs to that test."""
    outside = [source for source in sources if source is not IN_PROCESS_LOG]
    if not outside:
        return
    deadline = time.monotonic() + bound
    sizes, since = [source.size() for source in outside], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = [source.size() for source in outside]
        if now != sizes:
            sizes, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def check_server_logs(allowed: list[str] = ()) -> list[str]:
    """What every server the suite started (server processes, the in-process live server,
    ``make cluster``'s workers) logged since the last check that shows a fault: a traceback, an
    ERROR or CRITICAL line, unless a pattern in ``allowed`` names it. Waits for a short settle
    first; a source that has finished is read one last time and dropped."""
    sources = log_sources()
    settle(sources)
    problems = []
    for source in sources:
        finished = source.finished()
        problems += server_log_problems(source.unchecked_output(), allowed)
        if finished:
            if source in ServerProcess.running:
                ServerProcess.running.remove(source)
            elif source in WATCHED:
                WATCHED.remove(source)
    return problems


def stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a process started with ``start_new_session`` and all it started; SIGKILL what is
    left after ``timeout``."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def database_url() -> str:
    """The test database as a ``DATABASE_URL``, for server processes the test starts."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def server_env(**settings: str) -> dict[str, str]:
    """The environment of a server process the test starts: the test database, the test settings,
    the test Redis when there is one, and ``settings`` on top."""
    env = {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return {**env, **settings}


@contextlib.contextmanager
def server_processes(env: dict[str, str], count: int = 2) -> Iterator[list[ServerProcess]]:
    """``count`` real server processes, started, and stopped whatever happens."""
    processes = [ServerProcess(env) for _ in range(count)]
    try:
        yield [process.start() for process in processes]
    finally:
        for process in processes:
            process.stop()


def run(coro: Any, timeout: float = 90) -> Any:
    """Run a test scenario on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class RawSocket:
    """A Socket.IO client spoken by hand over one websocket (Engine.IO v4 text frames).

    For what the official clients refuse to send: reserved event names, packets that
    are not ``[name, ...]``, JSON with lone surrogates. ``send`` takes the Socket.IO
    packet text after the Engine.IO ``4`` (e.g. ``'2/customer,7["disconnect"]'``).
    """

    def __init__(self, url: str, namespace: str) -> None:
        self.url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.namespace = namespace
        self.frames: list[str] = []
        self._arrived = asyncio.Event()

    async def connect(self, token: str, auth: dict[str, Any] | None = None) -> "RawSocket":
        """Connect with ``{token, **auth}``; the CONNECT answer (``{sid, pid?}``) is kept in ``answer``."""
        import json

        import aiohttp

        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url)
        self._reader = asyncio.create_task(self._read())
        await self.next(lambda f: f.startswith("0{"))
        await self.ws.send_str(f"40{self.namespace}," + json.dumps({"token": token, **(auth or {})}))
        prefix = f"40{self.namespace},"
        self.answer = json.loads((await self.next(lambda f: f.startswith(prefix)))[len(prefix) :])
        return self

    async def _read(self) -> None:
        async for message in self.ws:
            if message.data == "2":  # Engine.IO ping: answer, or the server drops us
                await self.ws.send_str("3")
                continue
            self.frames.append(message.data)
            self._arrived.set()

    async def send(self, packet: str) -> None:
        await self.ws.send_str("4" + packet)

    async def next(self, match: Any, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if match(frame):
                    self.frames.remove(frame)
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame; got {self.frames}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))

    async def call(self, event: str, payload: Any, timeout: float = WAIT) -> Any:
        """Emit with an ack, encoded by the standard library (lone surrogates, big integers and all)."""
        import json

        self._ack_id = getattr(self, "_ack_id", 0) + 1
        await self.send(f"2{self.namespace},{self._ack_id}" + json.dumps([event, payload]))
        answer = await self.ack(self._ack_id, timeout)
        self.frames.clear()  # the error events that came with it
        return answer

    async def ack(self, ack_id: int, timeout: float = WAIT) -> Any:
        """The payload of the ACK for ``ack_id`` (``43/ns,<id>[...]``)."""
        import json

        prefix = f"43{self.namespace},{ack_id}["
        frame = await self.next(lambda f: f.startswith(prefix), timeout)
        return json.loads(frame[len(prefix) - 1 :])[0]

    @property
    def open(self) -> bool:
        return not self.ws.closed

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await self.http.close()


class TcpProxy:
    """A TCP proxy the test owns, between clients and a server: it can cut every connection,
    refuse new ones for a while, and send later ones to another server (a transport cut as a
    phone in a tunnel sees it, and a reconnect that lands on another process)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.open = True
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tcp-proxy")

    def start(self) -> "TcpProxy":
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        self.accepted += 1
        host, port = self.upstream.removeprefix("http://").split(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut(self, reopen: bool = False) -> None:
        """Close every proxied connection, both ways; refuse new ones until ``reopen``."""

        def close_all() -> None:
            self.open = reopen
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(close_all)

    def reopen(self, upstream: str | None = None) -> None:
        def reopen() -> None:
            self.upstream = upstream or self.upstream
            self.open = True

        self._loop.call_soon_threadsafe(reopen)

    def stop(self) -> None:
        async def shut_down() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)  # none left pending when the loop stops
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shut_down(), self._loop)
        self._thread.join(timeout=5)


def require_node() -> None:
    """Skip without Node; install the official client (tests/js) when it is missing."""
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    js = Path(__file__).resolve().parent / "js"
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (js / "node_modules" / "socket.io-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=js, check=True, timeout=300)


@contextlib.contextmanager
def staff_page(
    url: str,
    username: str,
    *,
    next: str = "/admin/",
    viewport: dict[str, int] | None = None,
    expected: Callable[[Any], bool] = lambda message: False,
    before_login: Callable[[Any], None] = lambda page: None,
) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page signed in to the admin at ``url`` as ``username`` (password ``password123``),
    sent on to ``next``; with the list of what the page reported wrong: its uncaught exceptions and
    its console errors but those ``expected`` takes for granted. ``before_login`` gets the page on
    the login form (to route what signing in loads). Skips the test without Chromium."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not expected(message):
            problems.append(message.text)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(**({"viewport": viewport} if viewport else {}))
            page.on("console", console)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{url}/admin/login/?next={next}")
            page.fill("#id_username", username)
            page.fill("#id_password", "password123")
            before_login(page)
            page.click("input[type=submit]")
            yield page, problems
        finally:
            browser.close()


@contextlib.contextmanager
def queries_of_every_thread() -> Iterator[list[str]]:
    """The SQL every thread of this process sends meanwhile, the live server's ORM threads included:
    Django hands each one a pooled connection per call (``CONN_MAX_AGE`` 0), and each connection
    lent meanwhile records what it runs (``connection_created``, then an execute wrapper). The pool's
    own check of a connection before lending it is not SQL Django runs: not counted."""
    from django.db.backends.signals import connection_created

    statements: list[str] = []
    wrapped: list[Any] = []
    lock = threading.Lock()

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with lock:
            statements.append(sql)
        return execute(sql, params, many, context)

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)
            with lock:
                wrapped.append(connection)

    connection_created.connect(install, weak=False)
    try:
        yield statements
    finally:
        connection_created.disconnect(install)
        with lock:
            for connection in wrapped:
                with contextlib.suppress(ValueError):
                    connection.execute_wrappers.remove(record)
