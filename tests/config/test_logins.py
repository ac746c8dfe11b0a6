"""Fair logins (contract 10.1): every password check, the admin's login included, is throttled
per address and per username before it is hashed, and one address gets at most a fair share of
the hashing pool."""

import http.client
import json
import re
import threading
import uuid
from collections import Counter

import pytest
from django.contrib.auth import hashers
from rest_framework.throttling import SimpleRateThrottle

from config import hashing
from config.errors import DomainError
from tests.factories import StaffFactory, UserFactory
from tests.live import ServerProcess, eventually
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

FLOODER, CUSTOMER = "127.0.0.1", "127.0.0.2"  # two addresses, both on loopback


class Browser:
    """One keep-alive connection from ``source``, with the cookies the server set."""

    def __init__(self, port: int, source: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
        self.cookies: dict[str, str] = {}

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = {**(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response.status, data


@pytest.mark.redis
@pytest.mark.timeout(240)
@pytest.mark.django_db(transaction=True)
def test_a_flood_of_wrong_admin_passwords_from_one_address_leaves_other_logins_answering(cluster_env):  # noqa: F811
    """12 connections POST wrong admin passwords from one address (production's PBKDF2, one
    hashing worker, eight queued) while a customer logs in 6 times from another: every login
    answers 200; the flood is refused past its address's share."""
    # The staff account's hash is production's: every wrong guess costs a full PBKDF2.
    staff = StaffFactory(username="root", is_superuser=True)
    staff.password = hashers.PBKDF2PasswordHasher().encode("the-real-one-9", hashers.get_random_string(12))
    staff.save(update_fields=["password"])
    customer = UserFactory(username="early-bird")
    env = {
        **cluster_env,
        "REAL_PASSWORD_HASHING": "1",
        "PASSWORD_HASH_WORKERS": "1",
        "PASSWORD_HASH_QUEUE": "8",
        "PASSWORD_HASH_WAIT": "60",  # a loaded machine hashes slowly: the share is the subject, not the wait
        # The throttles out of the way: the hashing pool's share is what is tested here.
        "THROTTLE_AUTH": "100000/min",
        "THROTTLE_LOGIN": "100000/min",
    }
    server = ServerProcess(env).start()
    stop = threading.Event()
    flood: Counter = Counter()

    def flooder() -> None:
        browser = Browser(server.port, FLOODER)
        status, page = browser.send("GET", "/admin/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        while not stop.is_set():
            form = f"csrfmiddlewaretoken={token}&username=root&password=guess-{uuid.uuid4().hex[:8]}&next=/admin/"
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": server.url + "/admin/login/"}
            status, _ = browser.send("POST", "/admin/login/", form.encode(), headers)
            flood[status] += 1

    threads = [threading.Thread(target=flooder, daemon=True) for _ in range(12)]
    try:
        for thread in threads:
            thread.start()
        logins = []
        for _ in range(6):
            browser = Browser(server.port, CUSTOMER)
            body = json.dumps({"username": customer.username, "password": "password123"}).encode()
            status, data = browser.send("POST", "/api/auth/token/", body, {"Content-Type": "application/json"})
            logins.append((status, data[:200]))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    assert [status for status, _ in logins] == [200] * 6, logins
    assert flood[200] > 0, flood  # the flood's guesses were hashed (the form answered them) ...
    assert flood[429] > 0, flood  # ... past its share, refused at once
    assert set(flood) <= {200, 429}, flood  # never a 503 for the queue, never a 500


@pytest.fixture
def rates(monkeypatch):
    def set_rates(**rates: str) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **rates})

    return set_rates


@pytest.fixture
def hashes(monkeypatch):
    """How many passwords the pool hashed or checked."""
    seen = []
    run = hashing.HashingPool.run

    def counted(self, work, *args):
        seen.append(work)
        return run(self, work, *args)

    monkeypatch.setattr(hashing.HashingPool, "run", counted)
    return seen


def fresh_address() -> str:
    """An address no other test used (throttle counts live in the shared cache for the run)."""
    return f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


@pytest.mark.django_db
def test_logins_are_throttled_per_username_from_any_address_before_hashing(api, rates, hashes):
    rates(login="3/min")
    target = UserFactory(username=f"target-{uuid.uuid4().hex[:6]}")
    bystander = UserFactory(username=f"bystander-{uuid.uuid4().hex[:6]}")
    for _ in range(3):  # three guesses, each from an address of its own
        wrong = api.post(
            "/api/auth/token/", {"username": target.username, "password": "guess"}, REMOTE_ADDR=fresh_address()
        )
        assert wrong.status_code == 401
    checked = len(hashes)
    # The right password, from yet another address, spelled in fullwidth capitals (which
    # Django's forms read as the same name): the account's count is spent.
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in target.username.upper())
    refused = api.post(
        "/api/auth/token/",
        {"username": fullwidth, "password": "password123"},
        REMOTE_ADDR=fresh_address(),
    )
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
    assert int(refused["Retry-After"]) == refused.json()["retryAfter"] >= 1
    assert len(hashes) == checked  # refused before any hash
    ok = api.post(
        "/api/auth/token/", {"username": bystander.username, "password": "password123"}, REMOTE_ADDR=fresh_address()
    )
    assert ok.status_code == 200  # another account is not held by the first's count


@pytest.mark.django_db
def test_a_password_change_is_throttled_per_user(api, rates):
    rates(login="2/min")
    user = UserFactory(username=f"changer-{uuid.uuid4().hex[:6]}")
    api.force_authenticate(user)
    for _ in range(2):
        wrong = api.post("/api/auth/password/", {"oldPassword": "nope", "newPassword": "tangerine-kettle-42"})
        assert wrong.status_code == 400
    assert (
        api.post("/api/auth/password/", {"oldPassword": "nope", "newPassword": "tangerine-kettle-42"}).status_code
        == 429
    )


@pytest.mark.django_db
def test_the_admin_login_is_throttled_per_address_and_per_username_before_hashing(client, rates, hashes):
    rates(auth="3/min", login="3/min")
    StaffFactory(username=f"boss-{uuid.uuid4().hex[:6]}")
    address = fresh_address()
    answers = [
        client.post("/admin/login/", {"username": f"guess-{i}", "password": "x"}, REMOTE_ADDR=address).status_code
        for i in range(4)
    ]
    assert answers == [200, 200, 200, 429]  # the form re-rendered thrice, then refused
    boss = f"boss-{uuid.uuid4().hex[:6]}"
    StaffFactory(username=boss)
    answers = [
        client.post("/admin/login/", {"username": boss, "password": "x"}, REMOTE_ADDR=fresh_address()).status_code
        for _ in range(3)
    ]
    checked = len(hashes)
    refused = client.post("/admin/login/", {"username": boss, "password": "password123"}, REMOTE_ADDR=fresh_address())
    assert answers == [200] * 3 and refused.status_code == 429, (answers, refused.status_code)
    assert refused.json()["code"] == "RATE_LIMITED" and int(refused["Retry-After"]) >= 1
    assert len(hashes) == checked
    assert client.get("/admin/login/", REMOTE_ADDR=address).status_code == 200  # the form itself stays


def test_one_address_holds_at_most_its_share_of_the_hashing_pool():
    pool = hashing.HashingPool(workers=1, queue=8, wait=30, nice=0, per_address=2)
    release = threading.Event()
    results: list = []

    def hash_from(address: str) -> None:
        token = hashing._address.set(address)
        try:
            results.append(pool.run(lambda: release.wait(10) and address))
        except DomainError as exc:
            results.append(exc.code)
        finally:
            hashing._address.reset(token)

    holders = [threading.Thread(target=hash_from, args=("10.0.0.1",)) for _ in range(2)]
    for thread in holders:
        thread.start()
    eventually(lambda: pool.admitted == 2, what="two hashes from one address admitted")
    hash_from("10.0.0.1")  # its third: refused at once, though the queue has room
    assert results == ["RATE_LIMITED"]
    other = threading.Thread(target=hash_from, args=("10.0.0.2",))
    other.start()
    eventually(lambda: pool.admitted == 3, what="another address admitted")
    release.set()
    for thread in (*holders, other):
        thread.join(10)
    assert sorted(results) == ["10.0.0.1", "10.0.0.1", "10.0.0.2", "RATE_LIMITED"]
