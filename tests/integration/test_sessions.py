"""Sessions: each full sign-in is listed, can be ended one by one or all but this one, and ends
by itself when idle or old (ASVS 7.4, 7.5)."""

from __future__ import annotations

import collections
import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from twostep.models import SecurityEvent, UserSession
from twostep.services import sessions
from twostep.session_store import new_session_key

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import api_fixture, assert_error, make_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Mobile Safari/537.36")
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


def web_sign_in(login="member", *, enrolled=None, clock=None, agent=CHROME_ANDROID) -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post("/login", {"login": login, "password": PASSWORD})
    if enrolled is not None:
        response = client.post("/login/code", {"code": enrolled.code()})
        clock.advance(30)  # the next sign-in needs a new step
    assert response.status_code == 302, response.content
    assert "_auth_user_id" in client.session
    return client


def signed_in(client) -> bool:
    return client.get("/security").status_code == 200


# The record ---------------------------------------------------------------------------------

def test_sign_in_records_a_session_with_address_and_browser(member):
    client = web_sign_in(agent=FIREFOX_WINDOWS)
    row = UserSession.objects.get(user=member)
    assert row.session_key == client.session.session_key
    assert row.ip == "127.0.0.1" and row.user_agent == FIREFOX_WINDOWS
    assert sessions.active_sessions(member, row.session_key)[0].browser == "Firefox on Windows"


def test_sign_in_with_second_factor_records_one_session_after_the_code(enrolled, clock):
    client = Client()
    client.post("/login", {"login": "member", "password": PASSWORD})
    assert not UserSession.objects.exists()  # half signed in is not a session
    client.post("/login/code", {"code": enrolled.code()})
    assert UserSession.objects.filter(user=enrolled.user).count() == 1


def test_sign_out_removes_the_session(member):
    client = web_sign_in()
    client.post("/logout")
    assert not UserSession.objects.exists()


@pytest.mark.parametrize(("agent", "name"), [
    (CHROME_ANDROID, "Chrome on Android"),
    (FIREFOX_WINDOWS, "Firefox on Windows"),
    (SAFARI_IPHONE, "Safari on iOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on macOS"),
    ("", "Unknown browser"),
    ("pytest", "Unknown browser"),
])
def test_browser_name_reads_the_user_agent(agent, name):
    assert sessions.browser_name(agent) == name


def test_last_seen_is_touched_at_most_once_a_minute(member, clock):
    client = web_sign_in()
    row = UserSession.objects.get()
    first = row.last_seen_at
    clock.advance(30)
    client.get("/security")
    assert UserSession.objects.get().last_seen_at == first
    clock.advance(31)
    client.get("/security")
    assert UserSession.objects.get().last_seen_at > first


# Listing and ending on the page -----------------------------------------------------------

def test_security_page_lists_sessions_and_marks_this_one(member):
    web_sign_in(agent=FIREFOX_WINDOWS)
    client = web_sign_in(agent=CHROME_ANDROID)
    page = client.get("/security").content.decode()
    assert "Your sessions" in page
    assert "Firefox on Windows" in page and "Chrome on Android" in page
    assert page.count("this session") == 1
    assert "Sign out everywhere else" in page


def test_sign_out_one_session_ends_it_there(member):
    other = web_sign_in(agent=FIREFOX_WINDOWS)
    client = web_sign_in()
    target = UserSession.objects.get(session_key=other.session.session_key)
    response = client.post(f"/security/sessions/{target.pk}/end")
    assert response.status_code == 302
    assert not signed_in(other) and signed_in(client)
    assert not Session.objects.filter(session_key=target.session_key).exists()
    assert SecurityEvent.objects.filter(user=member, type=SecurityEvent.Type.SESSION_ENDED).exists()


def test_sign_out_everywhere_else_keeps_this_one(member):
    others = [web_sign_in(agent=FIREFOX_WINDOWS), web_sign_in(agent=SAFARI_IPHONE)]
    client = web_sign_in()
    assert client.post("/security/sessions/end-others").status_code == 302
    assert signed_in(client)
    assert not any(signed_in(o) for o in others)
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [client.session.session_key]
    event = SecurityEvent.objects.get(type=SecurityEvent.Type.OTHER_SESSIONS_ENDED)
    assert event.detail["count"] == 2


def test_sign_out_session_needs_post_and_csrf(member):
    client = web_sign_in()
    row = UserSession.objects.get()
    assert client.get(f"/security/sessions/{row.pk}/end").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.post(f"/security/sessions/{row.pk}/end").status_code == 403
    assert signed_in(client)


def test_sign_out_another_users_session_is_not_found(member, make_user):
    make_user("other")
    theirs = web_sign_in("other")
    client = web_sign_in()
    row = UserSession.objects.get(user__login="other")
    assert client.post(f"/security/sessions/{row.pk}/end").status_code == 404
    assert signed_in(theirs)


def test_sign_out_this_session_from_the_list_signs_out(member):
    client = web_sign_in()
    row = UserSession.objects.get()
    response = client.post(f"/security/sessions/{row.pk}/end")
    assert response["Location"] == "/login"
    assert not signed_in(client)


# Dead sessions ----------------------------------------------------------------------------

def test_sessions_ended_by_a_two_factor_change_are_not_listed(enrolled, clock):
    other = web_sign_in(enrolled=enrolled, clock=clock, agent=FIREFOX_WINDOWS)
    client = web_sign_in(enrolled=enrolled, clock=clock)
    response = client.post("/security/disable", {"password": PASSWORD, "code": enrolled.code()})
    assert response.status_code == 302
    live = sessions.active_sessions(enrolled.user, client.session.session_key)
    assert [s.is_current for s in live] == [True]  # this one followed its new key
    assert not signed_in(other)
    assert UserSession.objects.count() == 1  # the dead one was cleaned up


def test_sessions_ended_by_a_password_change_are_not_listed(member):
    web_sign_in(agent=FIREFOX_WINDOWS)
    web_sign_in()
    member.refresh_from_db()
    member.set_password("a brand new password 42")
    member.save()
    assert sessions.active_sessions(member, None) == []
    assert not UserSession.objects.exists()


def test_expired_django_session_is_not_listed(member):
    client = web_sign_in()
    Session.objects.filter(session_key=client.session.session_key).delete()
    assert sessions.active_sessions(member, None) == []


# Timeouts ---------------------------------------------------------------------------------

def test_session_idle_past_the_limit_ends(member, clock, settings):
    settings.SESSION_COOKIE_AGE = 600
    client = web_sign_in()
    clock.advance(590)
    assert signed_in(client)  # use resets the idle time
    clock.advance(590)
    assert signed_in(client)
    clock.advance(601)
    assert not signed_in(client)
    assert not UserSession.objects.exists()


def test_session_older_than_the_absolute_limit_ends_even_when_used(member, clock, settings):
    settings.TWOSTEP_SESSION_MAX_SECONDS = 3600
    client = web_sign_in()
    for _ in range(5):
        clock.advance(700)
        assert signed_in(client)
    clock.advance(200)  # 3700 s after the sign-in
    assert not signed_in(client)
    assert not UserSession.objects.exists()


def test_absolute_limit_applies_to_the_api_too(api, member, clock, settings):
    settings.TWOSTEP_SESSION_MAX_SECONDS = 3600
    api.sign_in("member")
    clock.advance(3601)
    assert api.stage() == "anonymous"
    assert_error(api.get("/me/sessions"), 401, "not_authenticated")


# API --------------------------------------------------------------------------------------

def test_api_lists_sessions_with_current_marked(api, make_api, member):
    make_api().sign_in("member")
    api.sign_in("member")
    body = api.get("/me/sessions").json()
    assert len(body["sessions"]) == 2
    assert [s["current"] for s in body["sessions"]].count(True) == 1
    assert set(body["sessions"][0]) == {"id", "browser", "ip", "created_at", "last_seen_at", "current"}


def test_api_ends_one_session(api, make_api, member):
    other = make_api().sign_in("member")
    api.sign_in("member")
    target = UserSession.objects.get(session_key=other.session_cookie())
    response = api.send("DELETE", f"/me/sessions/{target.pk}")
    assert response.status_code == 200 and response.json() == {"ended": 1, "signed_out": False}
    assert other.stage() == "anonymous" and api.stage() == "authenticated"


def test_api_end_others_keeps_this_one(api, make_api, member):
    others = [make_api().sign_in("member") for _ in range(2)]
    api.sign_in("member")
    assert api.post("/me/sessions/end-others").json() == {"ended": 2, "signed_out": False}
    assert api.stage() == "authenticated"
    assert all(o.stage() == "anonymous" for o in others)


def test_api_ending_another_users_session_is_not_found(api, make_api, member, make_user):
    make_user("other")
    theirs = make_api().sign_in("other")
    api.sign_in("member")
    row = UserSession.objects.get(user__login="other")
    assert_error(api.send("DELETE", f"/me/sessions/{row.pk}"), 404, "not_found")
    assert_error(api.send("DELETE", "/me/sessions/nonsense"), 404, "not_found")
    assert theirs.stage() == "authenticated"


def test_api_ending_sessions_needs_csrf(api, member):
    api.sign_in("member")
    row = UserSession.objects.get()
    assert_error(api.send("DELETE", f"/me/sessions/{row.pk}", csrf=False), 403, "csrf_failed")
    assert_error(api.post("/me/sessions/end-others", csrf=False), 403, "csrf_failed")


def test_api_sessions_need_sign_in(api, db):
    assert_error(api.get("/me/sessions"), 401, "not_authenticated")


def test_service_end_session_unknown_is_not_found(member):
    from twostep.services.errors import NotFound

    with pytest.raises(NotFound):
        sessions.end_session(member, 12345, ORIGIN, None)


def test_api_ending_this_session_signs_it_out(api, member):
    api.sign_in("member")
    row = UserSession.objects.get()
    assert api.send("DELETE", f"/me/sessions/{row.pk}").json() == {"ended": 1, "signed_out": True}
    assert api.stage() == "anonymous"
    assert not UserSession.objects.exists()


def test_session_kept_after_confirming_a_new_authenticator_stays_listed(api, enrolled, clock):
    import pyotp

    api.sign_in("member", enrolled=enrolled)
    setup = api.post("/me/two-factor/setup", {"password": PASSWORD}).json()
    assert api.post("/me/two-factor/confirm", {"code": pyotp.TOTP(setup["secret"]).at(clock())}).status_code == 200
    body = api.get("/me/sessions").json()
    assert [s["current"] for s in body["sessions"]] == [True]


# The session store: a new key at every sign-in step, the old one gone ---------------------------

def test_session_keys_are_160_random_bits_in_32_cookie_safe_characters(enrolled, clock):
    client = Client()
    client.post("/login", {"login": "member", "password": PASSWORD})
    halfway = client.cookies["twostep_session"].value
    client.post("/login/code", {"code": enrolled.code()})
    keys = {halfway, client.cookies["twostep_session"].value} | {new_session_key() for _ in range(2000)}

    assert len(keys) == 2002  # no two alike
    assert all(re.fullmatch(r"[a-z2-7]{32}", key) for key in keys)  # base32: 5 bits a character
    # Every character is used, each about as often as the others (2000 × 32 draws, 2000 expected).
    counts = collections.Counter("".join(keys))
    assert len(counts) == 32 and max(counts.values()) < 1.25 * min(counts.values())


def test_each_sign_in_step_writes_a_new_key_and_deletes_the_old_row(enrolled, clock):
    client = Client()
    client.get("/login")
    client.cookies["twostep_session"] = "k" * 32  # a key an attacker planted in the browser
    client.post("/login", {"login": "member", "password": PASSWORD})
    halfway = client.cookies["twostep_session"].value
    assert halfway != "k" * 32 and Session.objects.filter(session_key=halfway).exists()
    client.post("/login/code", {"code": enrolled.code()})
    signed_in_key = client.cookies["twostep_session"].value
    assert signed_in_key != halfway
    assert list(Session.objects.values_list("session_key", flat=True)) == [signed_in_key]
    assert UserSession.objects.get().session_key == signed_in_key
    # The half-way key, replayed by someone who saw it, is nobody's session.
    replay = Client()
    replay.cookies["twostep_session"] = halfway
    assert not signed_in(replay)
    assert signed_in(client)


def test_a_sign_out_deletes_the_session_row(enrolled, clock):
    client = web_sign_in(enrolled=enrolled, clock=clock)
    key = client.cookies["twostep_session"].value
    client.post("/logout")
    assert not Session.objects.filter(session_key=key).exists()
    assert not UserSession.objects.exists()


def test_session_store_reads_a_saved_session_and_never_an_expired_one(db):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from twostep.session_store import SessionStore

    store = SessionStore()
    store["colour"] = "green"
    store.save()
    assert SessionStore(store.session_key).load() == {"colour": "green"}
    Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(store.session_key)
    assert expired.load() == {}
    assert expired.session_key is None  # a new key is made if it is saved: the old one is never revived
    assert SessionStore("short").load() == {}


def test_session_store_updates_its_row_and_says_so_when_the_row_is_gone(db):
    from django.contrib.sessions.backends.base import UpdateError
    from django.contrib.sessions.models import Session

    from twostep.session_store import SessionStore

    store = SessionStore()
    store["colour"] = "green"
    store.save()
    again = SessionStore(store.session_key)
    again["colour"] = "blue"
    again.save()  # the same key: its row updated, no second row
    assert Session.objects.count() == 1
    assert SessionStore(store.session_key).load() == {"colour": "blue"}
    Session.objects.all().delete()  # signed out elsewhere meanwhile
    again["colour"] = "red"
    with pytest.raises(UpdateError):  # the middleware answers "session interrupted"
        again.save()
    assert not Session.objects.exists()  # never written back under the ended key


def test_what_goes_with_a_new_key_is_written_in_its_transaction_or_not_at_all(db):
    from django.db import connection

    from twostep.session_store import SessionStore

    store = SessionStore()
    store["colour"] = "green"
    store.save()
    old_key = store.session_key
    store.cycle_key()  # a sign-in step: a new key, written at the end of the request
    written = []
    store.write_with(lambda key: written.append((key, connection.in_atomic_block)))
    assert written == []  # nothing yet: the request may still fail and save nothing
    store.save()
    assert written == [(store.session_key, True)] and store.session_key != old_key
    store.save()  # an update of the same key: nothing goes with it again
    assert len(written) == 1

    store.cycle_key()
    store.write_with(lambda key: written.append(key))
    store.flush()  # signed out before the end of the request: no session, nothing with it
    assert len(written) == 1


def test_session_store_refuses_a_taken_key_when_creating(db):
    from django.contrib.sessions.backends.base import CreateError

    from twostep.session_store import SessionStore

    store = SessionStore()
    store.save()
    twin = SessionStore(store.session_key)
    with pytest.raises(CreateError):
        twin.save(must_create=True)


def test_a_session_written_earlier_in_the_request_is_written_again_only_if_it_changed(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from twostep.session_store import SessionStore

    store = SessionStore()
    store["colour"] = "green"
    store.save()
    with CaptureQueriesContext(connection) as queries:
        store.save()  # the response's save after a sign-in wrote it: nothing new to write
    assert len(queries) == 0
    store["colour"] = "blue"
    with CaptureQueriesContext(connection) as queries:
        store.save()
    assert len(queries) == 1 and SessionStore(store.session_key).load() == {"colour": "blue"}


# A sign-in step's writes go with its session ------------------------------------------------

def test_the_code_step_writes_the_signed_in_session_once(enrolled, clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.post("/login", {"login": "member", "password": PASSWORD})
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/login/code", {"code": enrolled.code()})
    assert response.status_code == 302
    session_writes = [q["sql"].split(" ", 1)[0] for q in queries.captured_queries
                      if '"django_session"' in q["sql"] and not q["sql"].startswith("SELECT")]
    assert session_writes == ["INSERT", "DELETE"]  # the new key's row, the held one's gone; no UPDATE after
    assert signed_in(client)


def test_a_backup_code_is_spent_only_together_with_the_session_it_signs_in(enrolled, monkeypatch):
    """A sign-in that cannot be written (a full disk) leaves the code unspent, not lost."""
    from django.db import DatabaseError

    from twostep.services.factors import backup_codes

    client = Client(raise_request_exception=False)
    client.post("/login", {"login": "member", "password": PASSWORD})
    halfway = client.cookies["twostep_session"].value

    def full_disk(*args, **kwargs):
        raise DatabaseError("database or disk is full")

    monkeypatch.setattr(sessions, "start", full_disk)  # the sessions list's row of the sign-in
    assert client.post("/login/backup-code", {"code": enrolled.codes[0]}).status_code == 500
    assert backup_codes.remaining(enrolled.user) == 10
    assert not SecurityEvent.objects.filter(user=enrolled.user, type__in=["backup_code_used", "sign_in"]).exists()
    assert list(Session.objects.values_list("session_key", flat=True)) == [halfway]
    assert not UserSession.objects.exists()

    monkeypatch.undo()
    response = client.post("/login/backup-code", {"code": enrolled.codes[0]})
    assert response.status_code == 302 and signed_in(client)
    assert backup_codes.remaining(enrolled.user) == 9


def test_a_right_password_stays_counted_as_a_failure_until_its_session_is_written(member, monkeypatch):
    from django.db import DatabaseError

    from twostep.models import Throttle
    from twostep.services import throttling
    from twostep.session_store import SessionStore

    def full_disk(self, must_create=False):
        raise DatabaseError("database or disk is full")

    pair_key = throttling.password_keys("member", "127.0.0.1")[0]
    client = Client(raise_request_exception=False)
    monkeypatch.setattr(SessionStore, "save", full_disk)
    assert client.post("/login", {"login": "member", "password": PASSWORD}).status_code == 500
    assert Throttle.objects.get(key=pair_key).failures == 1  # an attempt that never reported

    monkeypatch.undo()
    assert client.post("/login", {"login": "member", "password": PASSWORD}).status_code == 302
    row = Throttle.objects.get(key=pair_key)  # this one settled; the abandoned one counts until its lease ends
    assert (row.failures, row.pending) == (1, 1)
