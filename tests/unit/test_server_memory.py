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


@pytest.fixture
def thp(tmp_path):
    """The kernel's transparent huge pages setting, as /sys shows it, in a file of our own."""
    def mode(shown: str):
        path = tmp_path / "enabled"
        path.write_text(shown + "\n")
        return path
    return mode


def test_serve_asks_for_huge_pages_where_the_kernel_leaves_them_to_programs(thp):
    environ = server.environment_with_huge_pages({"PATH": "/bin"}, thp("always [madvise] never"))

    assert environ == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


def test_serve_keeps_the_operators_other_tunables(thp):
    environ = server.environment_with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"},
                                                 thp("always [madvise] never"))

    assert environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1"


@pytest.mark.parametrize("tunables", ["glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=1",
                                      "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=0"])
def test_serve_restarts_no_more_once_the_tunable_is_set_by_anyone(thp, tunables):
    assert server.environment_with_huge_pages({"GLIBC_TUNABLES": tunables}, thp("always [madvise] never")) is None


@pytest.mark.parametrize("shown", ["[always] madvise never", "always madvise [never]"])
def test_serve_does_not_restart_where_asking_changes_nothing(thp, shown):
    assert server.environment_with_huge_pages({}, thp(shown)) is None


def test_serve_does_not_restart_without_the_kernels_setting(tmp_path):
    assert server.environment_with_huge_pages({}, tmp_path / "absent") is None
