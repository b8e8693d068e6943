"""Password throttles kept in Redis (TWOSTEP_REDIS_URL): same rules, fail closed."""

from __future__ import annotations

import os
import uuid
from unittest import mock

import pytest

from twostep.http import status_for
from twostep.services import signin, throttle_store
from twostep.services.audit import Origin
from twostep.services.errors import InvalidCredentials, Throttled
from twostep.services.throttle_store import StoreUnavailable

from ..conftest import PASSWORD

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
