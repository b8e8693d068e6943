"""Fixtures: two real `twostep serve` processes on one fresh PostgreSQL database, once a session.

Each process has its own port and its own data dir; they share only what a deployment behind a
load balancer shares: the database (and Redis where configured) and the keys, given in the
environment. Users are made with the `twostep` command, as an operator would. The queue workers
of both (`twostep serve` runs one each) send mail to one SMTP server run by the test. The servers
start once per pytest session and are stopped, and the database dropped, at its end.

PostgreSQL comes from TWOSTEP_DATABASE_URL (scripts/test-all runs this folder after its
PostgreSQL pass, in one pytest process: under pytest-xdist each worker would start its own
servers). Without it the suite is skipped, unless TWOSTEP_REQUIRE_POSTGRES says it must run.
"""

from __future__ import annotations

import contextlib
import os
import secrets

import dj_database_url
import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller

from ..integration.test_notifications_smtp import Collector, free_port
from .client import RUN_ADDRESSES_GLOB
from .cluster import REDIS_URL, Cluster


def _postgres_url() -> str:
    url = os.environ.get("TWOSTEP_DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        if os.environ.get("TWOSTEP_REQUIRE_POSTGRES"):
            pytest.fail("the two-process suite must run here, but TWOSTEP_DATABASE_URL is not PostgreSQL")
        pytest.skip("two processes share state through PostgreSQL: set TWOSTEP_DATABASE_URL "
                    "(make test-postgres; CI always runs it)")
    return url


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def _cluster(tmp_path_factory, logins: list[str], **extra_env: str):
    base_url = _postgres_url()
    config = dj_database_url.parse(base_url)
    name = f"{config['NAME']}_mp_{secrets.token_hex(4)}"
    admin = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"],
             "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    cluster = Cluster(tmp_path_factory.mktemp("multiprocess"), base_url.rsplit("/", 1)[0] + "/" + name,
                      extra_env)
    try:
        cluster.start(logins)
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(**admin) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Users the tests of tests/multiprocess/ share out among themselves, one purpose each.
LOGINS = ["sam", "pat", "dan", "eve", "tia", "tom", "ted", "bea", "fay", "max", "oli", "una", "ivo"]
# What processes behind one load balancer share for OpenID Connect: the public address (the
# issuer) and the ID-token signing key (test_oidc_codes.py).
PUBLIC_URL = "https://sso.acme.example"


def _signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def smtp_server():
    """The one SMTP server A's and B's queue workers send to (its handler keeps every envelope)."""
    controller = Controller(Collector(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory, smtp_server):
    """A and B on PostgreSQL, their workers sending to `smtp_server`; failed passwords counted in the database."""
    with _cluster(tmp_path_factory, LOGINS, TWOSTEP_EMAIL_HOST="127.0.0.1",
                  TWOSTEP_EMAIL_PORT=str(smtp_server.port), TWOSTEP_PUBLIC_URL=PUBLIC_URL,
                  TWOSTEP_OIDC_RSA_PRIVATE_KEY=_signing_key()) as running:
        yield running


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A and B on PostgreSQL with TWOSTEP_REDIS_URL: failed passwords counted in Redis."""
    _postgres_url()
    if not _redis_answers(REDIS_URL):
        if os.environ.get("TWOSTEP_REQUIRE_REDIS"):
            pytest.fail(f"Redis at {REDIS_URL} is required for this run but does not answer")
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    try:
        with _cluster(tmp_path_factory, [], TWOSTEP_REDIS_URL=REDIS_URL) as running:
            yield running
    finally:
        store = redis.Redis.from_url(REDIS_URL)
        left = list(store.scan_iter(match=RUN_ADDRESSES_GLOB))  # this run's counters
        if left:
            store.delete(*left)
