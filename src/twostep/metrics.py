"""Prometheus metrics: counters of security events, and the mail queue read at scrape time.

Counting happens in one place, `services/audit.record()`, which every security event passes
through: `count_event` adds one when the event's transaction commits, so an event rolled back
is never counted. Counters live in the process that counted; under `twostep serve` the gunicorn
workers write them to files in TWOSTEP_METRICS_DIR (prometheus-client's multiprocess mode),
and /metrics adds up every worker's. The queue figures are read from the database when scraped.

prometheus_client is imported lazily: its multiprocess mode is chosen when it is first imported,
which must happen after `twostep serve` has set PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from django.db import DatabaseError, transaction

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAMESPACE = "twostep"


_made: dict | None = None
_making = threading.Lock()


def _counters() -> dict:
    """The counters, made once per process. Under gthread workers two requests can ask first at
    the same moment; registering a counter twice raises, so the making is locked."""
    global _made
    if _made is None:
        with _making:
            if _made is None:
                _made = _make_counters()
    return _made


def _make_counters() -> dict:
    from prometheus_client import Counter

    return {
        "events": Counter("security_events", "Security events recorded, by type.", ["type"],
                          namespace=_NAMESPACE),
        "sign_ins": Counter("sign_ins", "Sign-in attempts that were decided, by method and outcome "
                            "(success, failure).", ["method", "outcome"], namespace=_NAMESPACE),
        "throttled": Counter("throttled_attempts", "Attempts refused by a throttle before being "
                             "checked, by step.", ["step"], namespace=_NAMESPACE),
        "second_factor_failures": Counter("second_factor_failures", "Wrong second-factor codes, by "
                                          "method and purpose.", ["method", "purpose"], namespace=_NAMESPACE),
        "busy": Counter("password_checks_busy", "Password checks answered 503 because the hashing gate "
                        "was full, by lane (priority: a device cookie or a signed-in person).", ["lane"],
                        namespace=_NAMESPACE),
        "early": Counter("sign_ins_refused_early", "Sign-ins answered 503 before Django because the hashing "
                         "gate was full (also counted in password_checks_busy), by transport (page, api).",
                         ["transport"], namespace=_NAMESPACE),
    }


def _label(value) -> str:
    # Label values come from the code (method names, steps), never from a client; bound them anyway.
    return str(value or "unknown")[:40]


def count_event(type: str, detail: dict) -> None:
    """Count a security event once its transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: _count(type, detail))


def _count(type: str, detail: dict) -> None:
    counters = _counters()
    counters["events"].labels(_label(type)).inc()
    if type == "sign_in":
        counters["sign_ins"].labels(_label(detail.get("method")), "success").inc()
    elif type == "sign_in_failed":
        counters["sign_ins"].labels("password", "failure").inc()
    elif type == "second_factor_failed":
        method, purpose = _label(detail.get("method")), _label(detail.get("purpose") or "sign_in")
        counters["second_factor_failures"].labels(method, purpose).inc()
        if purpose == "sign_in":
            counters["sign_ins"].labels(method, "failure").inc()
    elif type == "throttled":
        counters["throttled"].labels(_label(detail.get("step"))).inc()


def count_busy(priority: bool) -> None:
    """Count a password check refused at the hashing gate (no event: nothing was decided)."""
    _counters()["busy"].labels("priority" if priority else "normal").inc()


def count_early_refusal(transport: str) -> None:
    """Count a sign-in refused in front of Django (early_refusal.py) while the gate was full."""
    _counters()["early"].labels(_label(transport)).inc()


class _QueueCollector:
    """The mail queue's depth and failed mails, read from the notifications service when scraped.

    Present only where the notifications service offers `queue_depth()` / `failed_count()`; the
    figures are the database's, the same on every server (aggregate them with max, not sum).
    """

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from .services import notifications

        for name, help_text, function in (
            ("mail_queue_depth", "Mails waiting in the queue to be sent.", "queue_depth"),
            ("mail_failed", "Mails that could not be sent after every retry.", "failed_count"),
        ):
            read = getattr(notifications, function, None)
            if read is None:
                continue
            try:
                value = float(read())
            except DatabaseError:  # the counters are still worth serving while the database is away
                continue
            yield GaugeMetricFamily(f"{_NAMESPACE}_{name}", help_text, value=value)


def render() -> bytes:
    """Return the exposition text: every worker's counters, then the queue gauges."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    _counters()  # declared even before the first event, so every series's HELP is there from the start
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    queue = CollectorRegistry()
    queue.register(_QueueCollector())
    return text + generate_latest(queue)


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty `path` and point prometheus-client at it; call before any worker starts.

    Counters from an earlier run would otherwise be added to this run's.
    """
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(path)


def worker_exited(pid: int) -> None:
    """Tell prometheus-client a worker is gone (its counters stay; only live gauges would go)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
