"""What `twostep serve` does for its workers' memory: the gunicorn settings it passes and the
arbiter's objects frozen before the workers are forked (server.py)."""

from __future__ import annotations

import gc

import pytest

from twostep import server


@pytest.fixture
def started(monkeypatch):
    """Call server.serve with gunicorn's run replaced: return the settings gunicorn was given."""
    seen = {}

    def run(app):
        seen["cfg"] = app.cfg
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(server.Server, "run", run)

    def start(**options):
        try:
            server.serve("127.0.0.1", 8000, workers=2, threads=16, trusted_proxies=[], log_level="warning",
                         ready_line="ready", queue_worker=False, **options)
        finally:
            gc.unfreeze()
        return seen

    return start


def test_serve_replaces_a_worker_after_max_requests_with_jitter(started):
    seen = started(max_requests=10000)

    assert seen["cfg"].max_requests == 10000
    assert seen["cfg"].max_requests_jitter == 1000


def test_serve_never_replaces_workers_when_max_requests_is_zero(started):
    seen = started(max_requests=0)

    assert seen["cfg"].max_requests == 0


def test_serve_freezes_the_arbiters_objects_before_forking_workers(started):
    seen = started(max_requests=0)

    assert seen["frozen"] > 0


def test_worker_options_give_each_worker_a_jitter_of_a_tenth():
    assert server.worker_options(50) == {"max_requests": 50, "max_requests_jitter": 5}
    assert server.worker_options(5) == {"max_requests": 5, "max_requests_jitter": 1}
    assert server.worker_options(-1) == {"max_requests": 0}


def test_malloc_arenas_are_capped_on_glibc():
    assert server.limit_malloc_arenas() is True
