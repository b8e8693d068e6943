"""Fixtures: one real `twostep serve` per test process, with an account, as an operator starts it.

The tests here are clients of twostep that are not ours (Authlib, openid-client); they run in the
SQLite pass of scripts/test-all, where the service has a fresh data dir of its own.
"""

from __future__ import annotations

import itertools
import os

import pytest

from .provider import Provider, enrol


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/oidc/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.oidc)


@pytest.fixture(scope="session")
def provider(tmp_path_factory):
    running = Provider(tmp_path_factory.mktemp("oidc") / "data")
    try:
        running.cli("account", "create", "Acme", "--admin", "boss", "--email", "boss@acme.example",
                    "--password-stdin", stdin="correct horse battery staple\n")
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.logs(), running.logs()[-4000:]


_serial = itertools.count(1)


@pytest.fixture
def person(provider, request):
    """A fresh user of the account with an authenticator app (two sign-ins without waiting)."""
    return enrol(provider, f"{request.node.name[:20].strip('_').replace('_', '-')}-{next(_serial)}".lower())
