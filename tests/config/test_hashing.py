"""Password hashing at a bounded concurrency (contract 9.5): past its queue, 503 with Retry-After at once."""

import os
import threading
import time
from concurrent.futures import Future

import pytest
from django.contrib.auth.hashers import make_password

from config import hashing
from config.errors import Unavailable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pool(monkeypatch):
    """One worker, one waiting place, and hashing that takes 0.3 s (as PBKDF2 does here)."""
    pool = hashing.HashingPool(workers=1, queue=1, wait=5, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    real = hashing.hashers.MD5PasswordHasher.encode

    def slow(self, password, salt):
        time.sleep(0.3)
        return real(self, password, salt)

    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", slow)
    return pool


def test_past_the_queue_a_hash_is_refused_at_once_with_retry_after(small_pool):
    outcomes: list[object] = []

    def hash_one() -> None:
        try:
            outcomes.append(make_password("password123"))
        except Unavailable as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=hash_one) for _ in range(2)]  # one hashing, one waiting
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while small_pool.admitted < 2:  # both in: one hashing, one waiting
        assert time.monotonic() < deadline, "the two hashes were never admitted"
        time.sleep(0.01)
    started = time.monotonic()
    hash_one()  # the third: no place left
    refused_in = time.monotonic() - started
    for thread in threads:
        thread.join(5)
    refused = [o for o in outcomes if isinstance(o, Unavailable)]
    assert len(refused) == 1 and refused_in < 0.1  # at once, not after the others
    assert refused[0].retry_after >= 1 and refused[0].as_dict()["retryAfter"] == refused[0].retry_after
    assert sum(1 for o in outcomes if isinstance(o, str) and o.startswith("md5$")) == 2
    assert small_pool.admitted == 0  # every place given back


def test_a_hash_still_running_at_the_wait_is_answered_503_and_holds_its_place_until_it_ends(monkeypatch):
    """A starved CPU can make one hash outlast PASSWORD_HASH_WAIT: its caller is answered then,
    not when the hash ends, and the worker it still occupies is not offered to anyone else."""
    pool = hashing.HashingPool(workers=1, queue=0, wait=0.3, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    hashing_started, finish = threading.Event(), threading.Event()
    real = hashing.hashers.MD5PasswordHasher.encode

    def starved(self, password, salt):
        hashing_started.set()
        finish.wait(10)
        return real(self, password, salt)

    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", starved)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        make_password("password123")
    answered_in = time.monotonic() - started
    assert hashing_started.is_set() and 0.3 <= answered_in < 2  # it was running, and it was answered at the wait
    assert refused.value.retry_after >= 1
    assert pool.admitted == 1  # the abandoned hash still holds its worker
    with pytest.raises(Unavailable, match="at once"):
        make_password("password123")  # so the next finds no place, at once
    finish.set()
    deadline = time.monotonic() + 5
    while pool.admitted:
        assert time.monotonic() < deadline, "the place was never given back"
        time.sleep(0.01)
    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", real)
    assert make_password("password123").startswith("md5$")


def test_hashing_runs_on_its_own_low_priority_threads(small_pool, monkeypatch):
    seen: dict[str, object] = {}
    real = hashing.hashers.MD5PasswordHasher.encode

    def spy(self, password, salt):
        seen["thread"] = threading.current_thread().name
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return real(self, password, salt)

    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", spy)
    make_password("password123")
    assert str(seen["thread"]).startswith("hashing") and seen["nice"] >= 10


def test_a_login_refused_by_a_full_hashing_queue_is_503_with_retry_after(api, monkeypatch):
    UserFactory(username="stormy", password="password123")

    def full(*args, **kwargs):
        raise Unavailable("Too many sign-ins at once; retry shortly", retry_after=3)

    monkeypatch.setattr(hashing.HashingPool, "run", full)
    r = api.post("/api/auth/token/", {"username": "stormy", "password": "password123"}, format="json")
    assert r.status_code == 503 and r["Retry-After"] == "3"
    assert r.json() == {"code": "UNAVAILABLE", "message": "Too many sign-ins at once; retry shortly", "retryAfter": 3}
    signup = {
        "username": "newbie",
        "password": "tangerine-kettle-42",
        "email": "n@example.com",
        "name": "N",
        "phone": "1",
    }
    r = api.post("/api/auth/register/", signup, format="json")
    assert r.status_code == 503 and r["Retry-After"] == "3"
    admin = api.post("/admin/login/", {"username": "stormy", "password": "password123"}, format="multipart")
    assert admin.status_code == 503 and admin["Retry-After"] == "3"  # the admin's form too: never a 500


def test_a_password_change_is_answered_within_one_wait_though_it_hashes_twice(api, monkeypatch):
    """A password change checks the old password and hashes the new one (a login upgrading an
    older hash does the same): PASSWORD_HASH_WAIT bounds the request, not each hash, or a slowed
    CPU had it answered after twice the wait."""
    pool = hashing.HashingPool(workers=1, queue=1, wait=0.4, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    user = UserFactory(username="changer", password="password123")
    real = hashing.hashers.MD5PasswordHasher.encode

    def slowed(self, password, salt):  # each hash within the wait, two of them past it
        time.sleep(0.3)
        return real(self, password, salt)

    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", slowed)
    api.force_authenticate(user)
    started = time.monotonic()
    body = {"oldPassword": "password123", "newPassword": "tangerine-kettle-42"}
    r = api.post("/api/auth/password/", body, format="json")
    answered_in = time.monotonic() - started
    assert r.status_code == 503 and r.json()["code"] == "UNAVAILABLE", r.content
    assert answered_in < 0.55, answered_in  # the wait and a little, not two hashes' time
    deadline = time.monotonic() + 5
    while pool.admitted:
        assert time.monotonic() < deadline, "a place was never given back"
        time.sleep(0.01)
    user.refresh_from_db()
    assert user.check_password("password123")  # unchanged


def test_under_a_storm_the_hashes_that_run_are_answered(monkeypatch):
    """A queue longer than the wait (8 waiting, 0.1 s a hash, a 0.6 s wait) under a storm: a hash
    started after its caller's wait could cover it is not started (its caller is answered 503 at
    once), so the worker's time goes to hashes someone still waits for. Every hash began as its
    caller's wait ran out and ended for nobody: a sixth of them answered."""
    pool = hashing.HashingPool(workers=1, queue=8, wait=0.6, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    ran, answered = [], []
    real = hashing.hashers.MD5PasswordHasher.encode

    def hash_of_a_tenth(self, password, salt):
        time.sleep(0.1)
        ran.append(1)
        return real(self, password, salt)

    monkeypatch.setattr(hashing.hashers.MD5PasswordHasher, "encode", hash_of_a_tenth)
    end = time.monotonic() + 2.5

    def client() -> None:
        while time.monotonic() < end:
            try:
                answered.append(make_password("password123"))
            except Unavailable:
                time.sleep(0.02)

    # Daemons: a hung client fails the assertion below instead of holding the run open.
    threads = [threading.Thread(target=client, daemon=True) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not [thread for thread in threads if thread.is_alive()], "a client never came back from its hash"
    deadline = time.monotonic() + 5
    while pool.admitted:
        assert time.monotonic() < deadline, "a place was never given back"
        time.sleep(0.01)
    assert len(ran) >= 10 and len(answered) >= 0.9 * len(ran), (len(answered), len(ran))


def test_after_a_hash_as_long_as_the_wait_the_next_still_runs(small_pool):
    """A hash that waited less than half its wait runs whatever the last one took: were it
    skipped for a last hash about as long as the wait, every one after would be, and none would
    measure again (the pool refusing everyone for good)."""
    small_pool.wait = 1.0
    for last in (0.9999, 1.0, 10.0):
        small_pool._last = last
        assert make_password("password123").startswith("md5$")  # its 0.3 s, within the wait


def test_an_older_hash_is_upgraded_at_a_login_only_while_a_worker_is_free(monkeypatch):
    """After a Django upgrade raises PBKDF2's iterations, every user's first login would hash twice
    within one PASSWORD_HASH_WAIT; under load the second could refuse a right password 503. The
    upgrade is asked for only while a worker is idle; the login's own check no longer counts."""
    pool = hashing.HashingPool(workers=1, queue=2, wait=5, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    current = hashing.PBKDF2PasswordHasher()
    older = hashing.hashers.PBKDF2PasswordHasher().encode("password123", "salt", iterations=1000)
    assert current.must_update(older)  # idle: upgraded at this login
    hold = threading.Event()
    busy = threading.Thread(target=pool.run, args=(hold.wait, 10))
    busy.start()
    try:
        deadline = time.monotonic() + 5
        while pool.admitted < 1:
            assert time.monotonic() < deadline, "the busy hash was never admitted"
            time.sleep(0.01)
        assert not current.must_update(older)  # the worker taken: the login is answered, not upgraded
    finally:
        hold.set()
        busy.join(5)
    assert pool.admitted == 0 and current.must_update(older)


def test_a_hash_gives_its_place_back_before_its_caller_wakes(monkeypatch):
    """The login's own check is not counted when it asks whether to upgrade (a place given back by a
    done callback could still be held when ``result`` returned)."""
    pool = hashing.HashingPool(workers=1, queue=0, wait=5, nice=10)
    monkeypatch.setattr(hashing, "_pool", [pool])
    invoke = Future._invoke_callbacks

    def late_callbacks(self) -> None:  # the window between a waiter's wake-up and the callbacks, widened
        time.sleep(0.05)
        invoke(self)

    monkeypatch.setattr(Future, "_invoke_callbacks", late_callbacks)
    seen = []
    for _ in range(5):
        pool.run(lambda: None)
        seen.append(pool.admitted)
    assert seen == [0] * 5
