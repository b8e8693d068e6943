"""Two processes behave as one: a session and the throttles are the same whichever process answers.

Each throttle is first measured on process A alone; then the same wrong attempts alternate
between A and B. Were the counts kept per process, the alternating client would get twice as
many attempts before its refusal.
"""

from __future__ import annotations

import pytest

from .client import PASSWORD, Client, new_address

pytestmark = pytest.mark.multiprocess

# Far more attempts than any throttle here allows: reaching it means nothing was throttled.
GIVE_UP_AFTER = 30


def attempts_until_refused(attempt, wrong_status: int) -> tuple[int, object]:
    """Call attempt(n) for n = 0, 1, … until it answers 429; return how many were sent and the 429."""
    for n in range(GIVE_UP_AFTER):
        answer = attempt(n)
        if answer.status == 429:
            return n + 1, answer
        assert answer.status == wrong_status, answer
    pytest.fail(f"{GIVE_UP_AFTER} wrong attempts in a row were never refused")


@pytest.fixture(scope="module")
def sam(cluster):
    return cluster.enrol("sam", on=cluster.b)


def test_session_made_on_a_is_signed_in_on_b(cluster, sam):
    browser = Client(new_address())
    assert browser.login(cluster.a, "sam").body["stage"] == "second_factor"
    signed_in = browser.second_factor(cluster.a, "totp", sam.at(sam.confirmed_step + 1))
    assert signed_in.status == 200, signed_in

    on_b = browser.get(cluster.b, "/me/two-factor")
    assert on_b.status == 200, on_b
    assert on_b.body["enabled"] is True and on_b.body["backup_codes_remaining"] == 10


def test_sign_in_started_on_one_process_finishes_on_the_other(cluster, sam):
    browser = Client(new_address())
    assert browser.login(cluster.b, "sam").body["stage"] == "second_factor"
    assert browser.stage(cluster.a) == "second_factor"
    finished = browser.second_factor(cluster.a, "totp", sam.at(sam.confirmed_step + 2))
    assert finished.status == 200, finished
    assert browser.stage(cluster.b) == "authenticated"


def test_sign_out_on_b_ends_the_session_on_a(cluster):
    browser = Client(new_address())
    assert browser.login(cluster.a, "pat").body == {"stage": "authenticated"}
    copied = Client(browser.address)  # the same cookie, kept by someone after the sign-out
    for cookie in browser.cookies:
        copied.cookies.set_cookie(cookie)
    assert copied.get(cluster.a, "/me/two-factor").status == 200

    assert browser.post(cluster.b, "/auth/logout").status == 200
    assert copied.get(cluster.a, "/me/two-factor").status == 401
    assert copied.stage(cluster.a) == "anonymous"


def test_failed_passwords_on_a_and_b_add_up_to_one_throttle(cluster):
    alone = Client(new_address())
    on_a_alone, _ = attempts_until_refused(lambda n: alone.login(cluster.a, "pat", "not the password"), 401)

    both = Client(new_address())
    servers = [cluster.a, cluster.b]
    alternating, refusal = attempts_until_refused(
        lambda n: both.login(servers[n % 2], "pat", "not the password"), 401)

    assert alternating == on_a_alone
    assert int(refusal.headers["Retry-After"]) > 0
    # Both processes now refuse the right password too, before looking at it.
    for server in servers:
        refused = both.login(server, "pat", PASSWORD)
        assert (refused.status, refused.error) == (429, "throttled"), (server, refused)


def test_wrong_codes_on_a_and_b_add_up_to_one_throttle(cluster):
    dan, eve = cluster.enrol("dan"), cluster.enrol("eve")
    alone = Client(new_address())
    assert alone.login(cluster.a, "dan").body["stage"] == "second_factor"
    on_a_alone, _ = attempts_until_refused(
        lambda n: alone.second_factor(cluster.a, "totp", dan.wrong_code()), 401)

    both = Client(new_address())
    assert both.login(cluster.a, "eve").body["stage"] == "second_factor"
    servers = [cluster.b, cluster.a]
    alternating, refusal = attempts_until_refused(
        lambda n: both.second_factor(servers[n % 2], "totp", eve.wrong_code()), 401)

    assert alternating == on_a_alone
    assert int(refusal.headers["Retry-After"]) > 0
    # A throttled attempt is not checked at all: the right code is refused on both.
    right = eve.at(eve.confirmed_step + 1)
    for server in servers:
        refused = both.second_factor(server, "totp", right)
        assert (refused.status, refused.error) == (429, "throttled"), (server, refused)
