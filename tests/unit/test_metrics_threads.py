"""The metric counters are made once per process even when gthread workers' requests ask for them
at the same moment (a second registration raises DuplicateTimeseries: an HTTP 500 seen under load)."""

from __future__ import annotations

import threading
import time

from twostep import metrics


def test_counters_are_made_once_when_threads_race(monkeypatch):
    made = []

    def slow_make():
        made.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive while the first is making
        return {"made": len(made)}

    monkeypatch.setattr(metrics, "_made", None)
    monkeypatch.setattr(metrics, "_make_counters", slow_make)
    start = threading.Barrier(8)
    seen = []

    def ask():
        start.wait()
        seen.append(metrics._counters())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1]
    assert all(counters is seen[0] for counters in seen)
