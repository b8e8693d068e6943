"""Two processes behave as one with TWOSTEP_REDIS_URL: failed passwords add up in Redis."""

from __future__ import annotations

import pytest
import redis

from .client import PASSWORD, Client, new_address
from .cluster import REDIS_URL
from .test_shared_state import attempts_until_refused

pytestmark = pytest.mark.multiprocess


def test_failed_passwords_on_a_and_b_add_up_in_redis(redis_cluster):
    cluster = redis_cluster
    alone = Client(new_address())
    on_a_alone, _ = attempts_until_refused(lambda n: alone.login(cluster.a, "alice", "not the password"), 401)

    both = Client(new_address())
    servers = [cluster.a, cluster.b]
    alternating, _ = attempts_until_refused(
        lambda n: both.login(servers[n % 2], "alice", "not the password"), 401)
    assert alternating == on_a_alone
    for server in servers:
        assert both.login(server, "alice", PASSWORD).status == 429

    # The counters are in Redis, not in the database: removing them there lifts the block for both.
    store = redis.Redis.from_url(REDIS_URL)
    kept = list(store.scan_iter(match=f"*{both.address}*"))
    assert kept, "no counter for the address in Redis"
    store.delete(*kept)
    assert both.login(cluster.b, "alice", PASSWORD).body == {"stage": "authenticated"}
