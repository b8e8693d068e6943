"""Password throttles kept in Redis (TWOSTEP_REDIS_URL): same rules, fail closed."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from unittest import mock

import pytest

from twostep.http import status_for
from twostep.services import signin, throttle_store, throttling
from twostep.services.audit import Origin
from twostep.services.errors import InvalidCredentials, Throttled
from twostep.services.throttle_store import StoreUnavailable

from ..conftest import ORIGIN, PASSWORD
from .test_concurrency import outcomes, race, room_for_every_thread, unexpected  # noqa: F401 — a fixture

REDIS_URL = os.environ.get("TWOSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_store(settings, db):
    if not _redis_answers():
        if os.environ.get("TWOSTEP_REQUIRE_REDIS"):
            pytest.fail(f"Redis at {REDIS_URL} is required for this run but does not answer")
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    settings.REDIS_URL = REDIS_URL
    yield throttle_store.store()
    throttle_store._store_for.cache_clear()


def _origin() -> Origin:
    # A fresh documentation-range address per test: parallel workers share the Redis database.
    return Origin(ip=f"2001:db8::{uuid.uuid4().hex[:4]}", user_agent="pytest")


def _wrong(login, origin):
    with pytest.raises(InvalidCredentials):
        signin.check_password(login, "not the password", origin)


@pytest.mark.redis
def test_password_failures_in_redis_throttle_the_login_from_that_address(redis_store, member, clock, settings):
    origin = _origin()
    assert isinstance(redis_store, throttle_store.RedisStore)
    for _ in range(settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1):
        _wrong("member", origin)
    with mock.patch("twostep.services.signin.authenticate") as hasher:
        with pytest.raises(Throttled) as refused:
            signin.check_password("member", PASSWORD, origin)
    hasher.assert_not_called()  # refused before any password hash is computed
    assert 0 < refused.value.retry_after <= 30
    from twostep.models import Throttle

    assert not Throttle.objects.exists()  # the counters live in Redis, not the database


@pytest.mark.redis
def test_redis_throttle_spares_the_same_login_from_another_address(redis_store, member, clock, settings):
    attacker = _origin()
    for _ in range(settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1):
        _wrong("member", attacker)
    assert signin.check_password("member", PASSWORD, _origin()).stage == "authenticated"


@pytest.mark.redis
def test_redis_throttle_lifts_after_the_delay(redis_store, member, clock, settings):
    origin = _origin()
    for _ in range(settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1):
        _wrong("member", origin)
    with pytest.raises(Throttled):
        signin.check_password("member", PASSWORD, origin)
    clock.advance(31)
    assert signin.check_password("member", PASSWORD, origin).stage == "authenticated"


@pytest.mark.redis
def test_unreachable_redis_refuses_the_attempt(settings, member):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        with mock.patch("twostep.services.signin.authenticate") as hasher:
            with pytest.raises(StoreUnavailable) as refused:
                signin.check_password("member", PASSWORD, _origin())
        hasher.assert_not_called()
        assert status_for(refused.value) == 503
    finally:
        throttle_store._store_for.cache_clear()


@pytest.fixture
def own_redis_store(monkeypatch, redis_store):
    """A Redis store under a key prefix of this test's own, removed afterwards."""
    prefix = f"twostep-test-throttle:{uuid.uuid4().hex}:"
    own = throttle_store.RedisStore(REDIS_URL, prefix=prefix)
    monkeypatch.setattr(throttle_store, "store", lambda: own)
    monkeypatch.setattr(throttling, "store", lambda: own)
    yield own
    client = own._redis
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_twenty_wrong_passwords_at_once_in_redis_hash_no_more_than_one_by_one(own_redis_store, member, clock,
                                                                              settings, hashes):
    """Check-then-act (ASVS 15.4.2) with the Redis store: one script counts and refuses."""
    allowed = settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1
    results = race(20, lambda i: signin.check_password("member", f"wrong {i}", ORIGIN))
    assert unexpected(results, InvalidCredentials, Throttled) == []
    assert len(hashes) == allowed
    assert outcomes(results) == Counter({"InvalidCredentials": allowed, "Throttled": 20 - allowed})
    with pytest.raises(Throttled):
        signin.check_password("member", PASSWORD, ORIGIN)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_right_passwords_at_once_in_redis_are_all_accepted(own_redis_store, member, clock, settings):
    """Attempts wait for the ones being checked instead of being refused for them."""
    results = race(12, lambda i: signin.check_password("member", PASSWORD, ORIGIN))
    assert outcomes(results) == Counter({"ok": 12})
    assert own_redis_store._redis.keys(own_redis_store._prefix + "*") == []  # nothing left behind


@pytest.mark.redis
def test_lost_attempts_in_redis_stay_counted_and_stop_holding_back_after_the_lease(own_redis_store, member, clock,
                                                                                  monkeypatch, settings):
    from twostep.core import clock as core_clock

    monkeypatch.setattr(throttling, "BUSY_WAIT_SECONDS", 0.05)
    keys = throttling.password_keys("member", ORIGIN.ip)
    for _ in range(settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS + 1):
        throttling.reserve_password_attempt(keys, core_clock.utcnow())  # admitted, never reported back
    with mock.patch("twostep.services.signin.authenticate") as hasher:
        with pytest.raises(Throttled):
            signin.check_password("member", PASSWORD, ORIGIN)
    hasher.assert_not_called()
    clock.advance(throttle_store.LEASE.total_seconds() + 1)
    _wrong("member", ORIGIN)  # 7 failures now
    with pytest.raises(Throttled) as refused:
        signin.check_password("member", PASSWORD, ORIGIN)
    assert refused.value.retry_after == 60
