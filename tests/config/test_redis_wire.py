"""The broker's raw connection (``config.realtime.redis_wire``) reads ``REDIS_URL`` as redis-py
does: the cache and the recovery log use the same URL through redis-py, so a URL that works for
them works for the broker lanes, and one that fails, fails for both."""

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from config.realtime.redis_wire import Wire, command
from tests.live import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[int]:
    """A redis-server of the test's own that speaks TLS only, with a self-signed certificate
    (as managed Redis offers often do: their URLs say ``?ssl_cert_reqs=none``)."""
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.fail("redis-server and openssl are needed for the TLS test")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    certificate = ["-days", "1", "-subj", "/CN=redis.test", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", *certificate],
        check=True,
        capture_output=True,
        timeout=30,
    )
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *tls],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    yield port
    proc.terminate()
    proc.wait(10)


async def _wire_ping(url: str) -> object:
    wire = await Wire.open({"address": url})
    try:
        wire.write(command("PING"))
        async with asyncio.timeout(5):
            return (await wire.replies())[0]
    finally:
        wire.close()


async def _redis_py_ping(url: str) -> object:
    redis = Redis.from_url(url, socket_timeout=5)
    try:
        return await redis.ping()
    finally:
        await redis.aclose()


def test_a_tls_url_s_certificate_options_mean_what_they_mean_to_redis_py(tls_redis):
    """``rediss://...?ssl_cert_reqs=none`` (a self-signed server): redis-py connects, so must the
    lanes; without it the certificate is checked, and both refuse it."""

    async def scenario() -> None:
        lax = f"rediss://127.0.0.1:{tls_redis}?ssl_cert_reqs=none"
        assert await _redis_py_ping(lax) is True
        assert await _wire_ping(lax) == b"PONG"
        strict = f"rediss://127.0.0.1:{tls_redis}"
        for ping in (_redis_py_ping, _wire_ping):
            with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|Connection"):
                await ping(strict)

    asyncio.run(scenario())
