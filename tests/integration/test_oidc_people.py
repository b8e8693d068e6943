"""The people's side: Apps with access (page and API), revocation when sessions end, the activity log."""

from __future__ import annotations

import pytest

from twostep.models import OAuthAccessToken, OAuthRefreshToken, SecurityEvent
from twostep.services import activity, passwords, recovery

from ..conftest import ORIGIN, PASSWORD, web_sign_in
from .oidc_support import authorize_url, follow_to_code, make_client, redeem, refresh
from .test_api_support import api_fixture, assert_error  # noqa: F401

pytestmark = pytest.mark.django_db


def grant_app(client, name="Grafana", scope="openid offline_access"):
    app = make_client(name)
    tokens = redeem(client, app, follow_to_code(client, authorize_url(app, scope=scope))["code"]).json()
    return app, tokens


def alive(client, tokens) -> bool:
    return client.get("/oauth/userinfo", HTTP_AUTHORIZATION="Bearer " + tokens["access_token"]).status_code == 200


def test_security_page_lists_apps_and_revoke_ends_their_tokens(client, enrolled):
    web_sign_in(client, "member", enrolled)
    app, tokens = grant_app(client)
    other, other_tokens = grant_app(client, "Wiki")
    page = client.get("/security")
    assert b"Apps with access" in page.content and b"Grafana" in page.content and b"Wiki" in page.content
    response = client.post(f"/security/apps/{app.client_id}/revoke")
    assert response.status_code == 302
    assert not alive(client, tokens)
    assert refresh(client, app, tokens["refresh_token"]).status_code == 400
    assert alive(client, other_tokens)  # other apps keep theirs
    assert f"/security/apps/{app.client_id}/revoke".encode() not in client.get("/security").content
    event = SecurityEvent.objects.filter(type="app_revoked").latest("pk")
    assert event.detail["app"] == "Grafana" and event.actor_id == enrolled.user.pk
    assert client.post(f"/security/apps/{app.client_id}/revoke").status_code == 404
    assert client.post("/security/apps/nope/revoke").status_code == 404


def test_another_users_app_cannot_be_revoked(client, enrolled, make_user):
    from django.test import Client

    web_sign_in(client, "member", enrolled)
    app, tokens = grant_app(client)
    make_user("eve")
    eve = web_sign_in(Client(), "eve")
    assert eve.post(f"/security/apps/{app.client_id}/revoke").status_code == 404
    assert alive(client, tokens)


def test_api_lists_and_revokes_apps(api, enrolled):
    api.sign_in("member", enrolled=enrolled)
    app, tokens = grant_app(api.client)
    listing = api.get("/me/apps")
    assert listing.status_code == 200
    (row,) = listing.json()["apps"]
    assert row["client_id"] == app.client_id and row["name"] == "Grafana"
    assert row["last_used_at"] is not None and "offline_access" in row["scopes"]
    revoked = api.send("DELETE", f"/me/apps/{app.client_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked"]["name"] == "Grafana"
    assert api.get("/me/apps").json()["apps"] == []
    assert not alive(api.client, tokens)
    assert_error(api.send("DELETE", f"/me/apps/{app.client_id}"), 404, "not_found")


def test_api_apps_need_a_sign_in(api):
    assert api.get("/me/apps").status_code == 401


def test_password_change_revokes_every_apps_tokens(client, enrolled):
    web_sign_in(client, "member", enrolled)
    _app, tokens = grant_app(client)
    passwords.change_password(enrolled.user, PASSWORD, "a brand new passphrase 42", ORIGIN)
    assert not alive(client, tokens)
    assert OAuthRefreshToken.objects.filter(revoked__isnull=True).count() == 0
    event = SecurityEvent.objects.get(type="app_revoked")
    assert event.detail == {"by": "password_changed", "app": "Grafana", "client_id": _app.client_id}


def test_sign_out_everywhere_revokes_tokens(client, enrolled):
    web_sign_in(client, "member", enrolled)
    _app, tokens = grant_app(client)
    assert client.post("/security/sessions/end-others").status_code == 302
    assert not alive(client, tokens)


def test_admin_switching_2fa_off_revokes_tokens(client, enrolled, admin, admin_factor):
    web_sign_in(client, "member", enrolled)
    _app, tokens = grant_app(client)
    recovery.admin_disable_two_factor(admin, enrolled.user.pk, "lost phone", PASSWORD, ORIGIN,
                                      code=admin_factor.code())
    assert OAuthAccessToken.objects.count() == 0
    assert not alive(client, tokens)


def test_operator_switching_2fa_off_revokes_tokens(client, enrolled):
    web_sign_in(client, "member", enrolled)
    _app, tokens = grant_app(client)
    recovery.operator_disable_two_factor("member", "lost phone")
    assert not alive(client, tokens)


def test_user_switching_2fa_off_revokes_tokens(client, enrolled):
    from twostep.services import authenticators

    web_sign_in(client, "member", enrolled)
    _app, tokens = grant_app(client)
    enrolled._clock.advance(30)
    authenticators.disable(enrolled.user, PASSWORD, enrolled.code(), ORIGIN)
    assert not alive(client, tokens)


def test_every_step_is_in_the_activity_log_with_the_app_name(client, enrolled, admin):
    web_sign_in(client, "member", enrolled)
    app, tokens = grant_app(client)
    refresh(client, app, tokens["refresh_token"])
    client.get("/oauth/logout", {"id_token_hint": tokens["id_token"]})
    types = list(SecurityEvent.objects.filter(user=enrolled.user, type__startswith="app_")
                 .order_by("pk").values_list("type", flat=True))
    assert types == ["app_authorized", "app_token_issued", "app_token_refreshed", "app_signed_out"]
    texts = [activity.describe(e) for e in SecurityEvent.objects.filter(type__startswith="app_").order_by("pk")]
    assert texts == ["Signed in to Grafana", "Grafana received a token", "Grafana renewed its token",
                     "Signed out from Grafana"]
    # The admin sees which applications the account's users use.
    rows, _more = activity.account_events(admin, activity.make_filters(type="app_authorized"))
    assert [activity.describe(e) for e in rows] == ["Signed in to Grafana"]


def test_event_descriptions_in_russian(client, enrolled):
    from django.utils import translation

    web_sign_in(client, "member", enrolled)
    grant_app(client)
    event = SecurityEvent.objects.filter(type="app_authorized").get()
    with translation.override("ru"):
        assert activity.describe(event) == "Вход в Grafana"


def test_rp_initiated_logout_signs_out_and_goes_back_to_a_registered_uri(client, enrolled):
    from .oidc_support import LOGOUT_REDIRECT

    web_sign_in(client, "member", enrolled)
    app, tokens = grant_app(client, scope="openid")
    other, other_tokens = grant_app(client, "Wiki", scope="openid")
    response = client.get("/oauth/logout", {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri":
                                            LOGOUT_REDIRECT, "state": "bye"})
    assert response.status_code == 302 and response["Location"] == LOGOUT_REDIRECT + "?state=bye"
    assert "_auth_user_id" not in client.session
    assert not alive(client, tokens)
    assert alive(client, other_tokens)  # another application's sign-in is its own
    bad = client.get("/oauth/logout", {"client_id": app.client_id, "post_logout_redirect_uri":
                                       "https://evil.example/"})
    assert bad.status_code == 400 and "evil" not in bad.get("Location", "")
    assert client.get("/oauth/logout", {"client_id": "nope"}).status_code == 400
