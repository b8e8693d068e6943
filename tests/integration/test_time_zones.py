"""Times in the reader's zone: detected by the browser, remembered on the user, chosen on a page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from twostep.services import audit, time_zones
from twostep.services.audit import Origin, Type
from twostep.services.errors import InvalidInput


def test_check_accepts_an_iana_zone():
    assert time_zones.check(" Europe/Moscow ") == "Europe/Moscow"


@pytest.mark.parametrize("bad", ["", "Mars/Olympus", "europe/moscow", "../../etc/passwd", "UTC" * 30, None, 3])
def test_check_refuses_what_is_not_a_zone(bad):
    with pytest.raises(InvalidInput) as refused:
        time_zones.check(bad)
    assert "time_zone" in refused.value.extra["fields"]


def test_the_first_page_remembers_the_browsers_zone(client, member):
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Asia/Vladivostok"
    page = client.get("/security").content.decode()
    assert "(Asia/Vladivostok)" in page
    member.refresh_from_db()
    assert member.time_zone == "Asia/Vladivostok"


def test_a_saved_zone_wins_over_the_browsers(client, member):
    time_zones.remember(member, "Europe/Moscow")
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "America/New_York"
    assert "(Europe/Moscow)" in client.get("/security").content.decode()
    member.refresh_from_db()
    assert member.time_zone == "Europe/Moscow"


def test_a_bad_cookie_is_ignored_and_the_page_asks_the_browser_again(client, member):
    client.force_login(member)
    client.cookies[time_zones.COOKIE] = "Nowhere/Atlantis"
    page = client.get("/security").content.decode()
    assert "(UTC)" in page and 'data-detect-time-zone="GET"' in page
    member.refresh_from_db()
    assert member.time_zone == ""


def test_times_are_shown_in_the_users_zone(client, member):
    time_zones.remember(member, "Asia/Tokyo")
    event = audit.record(Type.SIGN_IN, user=member, actor=member, origin=Origin(ip="192.0.2.1"), method="totp")
    type(event).objects.filter(pk=event.pk).update(at=datetime(2026, 1, 2, 23, 30, tzinfo=UTC))
    client.force_login(member)
    page = client.get("/security/activity").content.decode()
    assert "Jan. 3, 2026, 8:30 a.m." in page and "(Asia/Tokyo)" in page


def test_the_zone_is_not_left_active_after_the_request(client, member):
    time_zones.remember(member, "Asia/Tokyo")
    client.force_login(member)
    client.get("/security")
    assert timezone.get_current_timezone_name() == "UTC"


def test_choosing_a_zone_saves_it_for_the_user_and_the_browser(client, member):
    client.force_login(member)
    answer = client.post("/time-zone", {"time_zone": "Europe/Berlin", "next": "/security/activity"})
    assert answer.status_code == 302 and answer["Location"] == "/security/activity"
    assert answer.cookies[time_zones.COOKIE].value == "Europe/Berlin"
    member.refresh_from_db()
    assert member.time_zone == "Europe/Berlin"


def test_choosing_an_unknown_zone_is_a_clear_400(client, member):
    client.force_login(member)
    answer = client.post("/time-zone", {"time_zone": "Mars/Olympus"})
    assert answer.status_code == 400
    assert "Mars/Olympus" not in answer.cookies
    member.refresh_from_db()
    assert member.time_zone == ""


def test_the_time_zone_page_names_the_zone_in_russian(client, member):
    time_zones.remember(member, "Europe/Moscow")
    client.force_login(member)
    page = client.get("/time-zone", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Часовой пояс" in page and "<strong>Europe/Moscow</strong>" in page
