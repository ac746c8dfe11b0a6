"""Password hashing at a bounded concurrency, on threads that yield the CPU (contract 9.5).

A password hash is meant to be expensive (PBKDF2's 1,000,000 iterations: a large part of a
CPU-second here), and it releases the GIL, so a storm of logins and sign-ups, each in its
own request thread, would fill every core and leave the event loop (sockets, relays, cheap
requests) queued behind it. Every hash and check therefore runs on this process's own small
pool:

- at most ``PASSWORD_HASH_WORKERS`` at once, on threads started with a lower scheduling
  priority (``PASSWORD_HASH_NICE``): when the CPU is short, the kernel gives it to the event
  loop first, and hashing takes what is left;
- at most ``PASSWORD_HASH_QUEUE`` waiting; past that the request is refused at once with
  ``UNAVAILABLE`` and ``retryAfter``, and so it is once it has waited ``PASSWORD_HASH_WAIT``
  seconds in all, queued or hashing, its request's earlier hashes included: a client is
  answered within the wait whatever the CPU. A queued hash that waited past half its wait and
  would end after it (going by the last hash's time) is not started, its caller answered at once
  (``_in_time``), so a storm spends the workers on hashes someone still waits for;
- at most ``PASSWORD_HASH_PER_ADDRESS`` of those (running or waiting) from one client address
  (contract 10.1): the next from that address is refused at once with ``RATE_LIMITED``, so one
  address flooding a login form holds a fair share of the pool, and every other address's
  logins still find room. The address is the request's (``ClientAddressMiddleware``: the one
  ``config.proxies`` decided); work with no request behind it (a management command) has none
  and is bounded by the pool alone.

The hashers are Django's own (the stored format, the iteration counts and the upgrade path
of existing hashes are theirs); ``Bounded`` only decides where and when they run, and defers an
upgrade of an older hash at a login to a moment a worker is free. Hand-written
because it is a few dozen lines on ``ThreadPoolExecutor``; no kept package schedules hashing.
"""

import contextlib
import contextvars
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import hashers
from django.db import connection
from django.http import HttpRequest, HttpResponse

from config import metrics
from config.errors import RateLimited, Unavailable

T = TypeVar("T")


_thread = threading.local()  # ``on_pool``: this thread is one of the pool's
# The client address of the request this thread is answering ("" outside a request).
_address: contextvars.ContextVar[str] = contextvars.ContextVar("hashing_client_address", default="")
# In a request, when its PASSWORD_HASH_WAIT ends (set by its first hash): a request may hash twice
# (a password change checks the old one and hashes the new; a login upgrades an older hash), and
# each waiting the whole wait answered it after twice the wait.
_deadline: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("hashing_deadline", default=None)


class ClientAddressMiddleware:
    """Django middleware: the hashing pool learns which address a password check is for."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token, deadline = _address.set(request.META.get("REMOTE_ADDR") or ""), _deadline.set([])
        try:
            return self.get_response(request)
        finally:
            _address.reset(token)
            _deadline.reset(deadline)


class _TooLateError(Exception):
    """A queued hash its caller would not wait for to its end: not started."""


class HashingPool:
    def __init__(self, workers: int, queue: int, wait: float, nice: int, per_address: int = 0) -> None:
        self.workers, self.capacity, self.wait, self.nice = workers, workers + queue, wait, nice
        self.per_address = per_address  # 0: no share per address
        self._admitted = 0
        # Seconds the last hash took (``_in_time``). Written and read on the workers without the lock:
        # under the GIL an attribute's load or store is one bytecode, so a reader sees a whole float,
        # and two hashes ending together leave one of their times, either a fair "last" for a guess.
        self._last = 0.0
        self._by_address: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="hashing", initializer=self._yield_cpu)

    def _yield_cpu(self) -> None:
        _thread.on_pool = True
        # Linux schedules threads one by one: this lowers only the hashing thread.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)

    def _admit(self, address: str) -> Callable[[], None]:
        """Take a place (refused at once when none is left); the returned callable gives it back."""
        shared = bool(address and self.per_address)
        with self._lock:
            if shared and self._by_address[address] >= self.per_address:
                metrics.HASHING_REFUSED.inc()
                raise RateLimited("Too many sign-ins from your address at once; retry shortly", retry_after=1)
            if self._admitted >= self.capacity:
                metrics.HASHING_REFUSED.inc()
                raise Unavailable("Too many sign-ins at once; retry shortly", retry_after=self.retry_after())
            self._admitted += 1
            if shared:
                self._by_address[address] += 1

        def release() -> None:
            with self._lock:
                self._admitted -= 1
                if shared:
                    self._by_address[address] -= 1
                    if not self._by_address[address]:
                        del self._by_address[address]  # the counter keeps only addresses in flight

        return release

    def retry_after(self) -> float:
        """A fair guess at when a slot frees: the queue ahead, a second of hashing per worker each."""
        return max(1.0, self.capacity / self.workers)

    def run(self, work: Callable[..., T], *args: Any) -> T:
        if getattr(_thread, "on_pool", False):  # a hasher calling itself (verify -> encode): already here
            return work(*args)
        if not connection.in_atomic_block:
            # A login read its user first: give the pooled connection back while this waits and
            # hashes, or a storm of logins would hold the whole database pool for nothing.
            connection.close()
        wait = self._wait_left()
        if wait <= 0:  # the request's hashes before this one took its whole wait
            metrics.HASHING_REFUSED.inc()
            raise self._slow()
        release = self._admit(_address.get())
        try:
            future = self._executor.submit(self._in_time, release, wait, time.monotonic() + wait, work, *args)
        except BaseException:
            release()
            raise
        try:
            return future.result(timeout=wait)
        except _TooLateError:
            metrics.HASHING_REFUSED.inc()
            raise self._slow() from None
        except TimeoutError:
            # Queued: it will not run. Running already: it ends unread. Either way the caller is
            # answered now; on a starved CPU a running hash can take longer than the wait itself.
            if future.cancel():  # never to run, nor to give its place back there
                release()
            metrics.HASHING_REFUSED.inc()
            raise self._slow() from None

    def _in_time(
        self, release: Callable[[], None], wait: float, deadline: float, work: Callable[..., T], *args: Any
    ) -> T:
        """On a worker: the hash, unless its caller stops waiting before one as long as the last
        ends. Under a full queue every hash began as its caller's wait ran out and ended for nobody
        (a queue of 8 taking 0.3 s each, a 2 s wait: 6 of 40 answered); its caller is answered now.
        One that waited less than half its wait always runs: a last hash about as long as the
        wait, or longer, would otherwise skip every one after it, and none would measure again."""
        try:
            left = deadline - time.monotonic()
            if left < self._last and left < wait / 2:
                raise _TooLateError
            started = time.monotonic()
            try:
                return work(*args)
            finally:
                self._last = time.monotonic() - started
        finally:
            # The place is given back when the hash ends, not when its caller stops waiting (a hash
            # nobody waits for still holds its worker: the pool admits only what it runs), and here,
            # before the caller wakes: ``free_worker`` then no longer counts the caller's own hash.
            release()

    def free_worker(self) -> bool:
        """A worker is idle and nothing waits: a hash asked for now starts at once."""
        return self._admitted < self.workers

    def _wait_left(self) -> float:
        """``PASSWORD_HASH_WAIT``; in a request, what its earlier hashes left of it."""
        deadline = _deadline.get()
        if deadline is None:  # no request behind it (a management command): each hash its wait
            return self.wait
        if not deadline:
            deadline.append(time.monotonic() + self.wait)
        return deadline[0] - time.monotonic()

    def _slow(self) -> Unavailable:
        return Unavailable("Sign-ins are slow right now; retry shortly", retry_after=self.retry_after())

    @property
    def admitted(self) -> int:
        return self._admitted


_pool: list[HashingPool] = []
_pool_lock = threading.Lock()


def pool() -> HashingPool:
    """This process's pool, made on first use (a forked worker makes its own)."""
    if not _pool:
        with _pool_lock:
            if not _pool:
                _pool.append(
                    HashingPool(
                        workers=settings.PASSWORD_HASH_WORKERS,
                        queue=settings.PASSWORD_HASH_QUEUE,
                        wait=settings.PASSWORD_HASH_WAIT,
                        nice=settings.PASSWORD_HASH_NICE,
                        per_address=settings.PASSWORD_HASH_PER_ADDRESS,
                    )
                )
    return _pool[0]


class Bounded:
    """Mixin for a Django hasher: ``encode`` and ``verify`` run on the hashing pool."""

    def encode(self, password: str, salt: str, *args: Any, **kwargs: Any) -> str:
        return pool().run(lambda: super(Bounded, self).encode(password, salt, *args, **kwargs))

    def verify(self, password: str, encoded: str) -> bool:
        return pool().run(super().verify, password, encoded)

    def must_update(self, encoded: str) -> bool:
        """An older hash (fewer iterations: every user's after a Django upgrade) is hashed again at a
        login only while a worker is free. Under load that second hash would share the login's
        ``PASSWORD_HASH_WAIT`` and could refuse a right password 503; a later login upgrades it."""
        return super().must_update(encoded) and pool().free_worker()


class PBKDF2PasswordHasher(Bounded, hashers.PBKDF2PasswordHasher):
    pass
