"""Minutes after signing in, the security page asks for the password once, then lets the changes through."""

from __future__ import annotations

import re

from twostep.models import SecurityEvent

from ..conftest import PASSWORD

PASSWORD_INPUT = re.compile(r'<input type="password"')


def stale_page(client, user) -> str:
    user.refresh_from_db()
    client.force_login(user)  # signed in, but no password typed in this session lately
    return client.get("/security").content.decode()


def test_a_stale_page_has_one_password_field(client, enrolled):
    page = stale_page(client, enrolled.user)
    assert "Confirm it is you" in page
    assert len(PASSWORD_INPUT.findall(page)) == 1  # not one per change (add app, new codes, remove, off)
    assert 'action="/security/confirm-password"' in page


def test_after_confirming_the_changes_ask_no_more(client, enrolled, clock):
    stale_page(client, enrolled.user)
    answer = client.post("/security/confirm-password", {"password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/security"
    page = client.get("/security").content.decode()
    assert "Confirm it is you" not in page and not PASSWORD_INPUT.search(page)

    made = client.post("/security/backup-codes", {})
    assert made.status_code == 302 and made["Location"] == "/security/backup-codes/new"  # no password asked
    switched_off = client.post("/security/disable", {"code": enrolled.code(1)})
    assert switched_off.status_code == 302
    enrolled.user.refresh_from_db()
    assert not enrolled.user.authenticators.exists()


def test_a_confirmation_counts_even_where_every_change_asks(client, enrolled, settings, clock):
    settings.TWOSTEP_REAUTH_MINUTES = 0
    stale_page(client, enrolled.user)
    client.post("/security/confirm-password", {"password": PASSWORD})
    assert client.post("/security/backup-codes", {}).status_code == 302  # made, shown on their own page
    clock.advance(5 * 60 + 1)  # then it is stale again
    assert "Confirm it is you" in client.get("/security").content.decode()
    assert client.post("/security/backup-codes", {}).status_code == 400


def test_a_wrong_password_is_said_in_the_one_field(client, enrolled):
    stale_page(client, enrolled.user)
    answer = client.post("/security/confirm-password", {"password": "not " + PASSWORD})
    page = answer.content.decode()
    assert answer.status_code == 403
    assert "The password is not right." in page and 'id="confirm_password_error"' in page
    assert SecurityEvent.objects.filter(user=enrolled.user, type="reauth_failed").exists()


def test_confirming_needs_a_signed_in_user(client, db):
    answer = client.post("/security/confirm-password", {"password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"].startswith("/login")
