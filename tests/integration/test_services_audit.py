"""Audit: every security event is recorded with who, whom, when, address and user agent."""

from __future__ import annotations

import pyotp
import pytest

from twostep.core import backup_codes as codes_core
from twostep.models import SecurityEvent
from twostep.services import accounts, activity, authenticators, recovery, signin
from twostep.services.audit import Origin
from twostep.services.errors import ServiceError
from twostep.services.factors import backup_codes

from ..conftest import PASSWORD, MemorySession

pytestmark = pytest.mark.django_db

HERE = Origin(ip="2001:db8::42", user_agent="Mozilla/5.0 (audit test)")


def attempt(action, *args, **kwargs):
    """Run an action that may be refused; the refusal is part of what is audited."""
    try:
        action(*args, **kwargs)
    except ServiceError:
        pass


def wrong_code(enrolled):
    window = {enrolled.code(o) for o in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in window)


def sign_in_with_password(ctx):
    ctx.make_user("plain")
    signin.password(MemorySession(), "plain", PASSWORD, HERE)
    return "plain", "plain"


def sign_in_with_code(ctx):
    signin.check_code(ctx.enrolled.user.pk, ctx.enrolled.code(), HERE)
    return "member", "member"


def wrong_password(ctx):
    attempt(signin.check_password, "member", "not the password", HERE)
    return "member", ""


def wrong_second_factor(ctx):
    attempt(signin.check_code, ctx.enrolled.user.pk, wrong_code(ctx.enrolled), HERE)
    return "member", ""


def throttled(ctx):
    for _ in range(7):
        attempt(signin.check_code, ctx.enrolled.user.pk, wrong_code(ctx.enrolled), HERE)
    return "member", ""


def locked(ctx):
    ctx.settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER = 6
    for _ in range(6):
        attempt(signin.check_code, ctx.enrolled.user.pk, wrong_code(ctx.enrolled), HERE)
        ctx.clock.advance(900)
    return "member", ""


def enabled(ctx):
    user = ctx.make_user("fresh")
    setup = authenticators.start_app(user, PASSWORD, HERE)
    authenticators.confirm_app(user, pyotp.TOTP(setup.secret).at(ctx.clock()), HERE)
    return "fresh", "fresh"


def replaced(ctx):
    setup = authenticators.start_app(ctx.enrolled.user, PASSWORD, HERE)
    authenticators.confirm_app(ctx.enrolled.user, pyotp.TOTP(setup.secret).at(ctx.clock()), HERE,
                               replace_apps=True)
    return "member", "member"


def codes_generated(ctx):
    backup_codes.generate(ctx.enrolled.user, PASSWORD, HERE)
    return "member", "member"


def code_used(ctx):
    signin.check_code(ctx.enrolled.user.pk, ctx.enrolled.codes[0], HERE)
    return "member", "member"


def disabled(ctx):
    authenticators.disable(ctx.enrolled.user, PASSWORD, ctx.enrolled.code(), HERE)
    return "member", "member"


def admin_disabled(ctx):
    recovery.admin_disable_two_factor(ctx.admin, ctx.enrolled.user.pk, "audit test", PASSWORD, HERE,
                                      second_factor_fresh=True)
    return "member", "admin"


def reauth_failed(ctx):
    attempt(backup_codes.generate, ctx.enrolled.user, "not the password", HERE)
    return "member", "member"


def policy_changed(ctx):
    accounts.set_require_two_factor(ctx.admin, True, HERE)
    return "admin", "admin"


class Context:
    def __init__(self, **parts):
        self.__dict__.update(parts)


@pytest.mark.parametrize(("event_type", "action"), [
    ("sign_in", sign_in_with_password),
    ("sign_in", sign_in_with_code),
    ("sign_in_failed", wrong_password),
    ("second_factor_failed", wrong_second_factor),
    ("throttled", throttled),
    ("second_factor_locked", locked),
    ("two_factor_enabled", enabled),
    ("authenticator_replaced", replaced),
    ("backup_codes_generated", codes_generated),
    ("backup_code_used", code_used),
    ("two_factor_disabled", disabled),
    ("admin_disabled_two_factor", admin_disabled),
    ("reauth_failed", reauth_failed),
    ("policy_changed", policy_changed),
])
def test_security_event_is_recorded_with_origin(event_type, action, enrolled, admin, make_user, clock,
                                                settings, admin_factor):
    """ASVS 16.3.1: every authentication decision is logged with who, whom, when and where."""
    clock.advance(3600)
    ctx = Context(enrolled=enrolled, admin=admin, make_user=make_user, clock=clock, settings=settings)
    before = SecurityEvent.objects.filter(type=event_type).count()
    whom, actor = action(ctx)
    events = SecurityEvent.objects.filter(type=event_type).select_related("user")
    assert events.count() > before
    event = events.latest("pk")
    assert event.user.login == whom
    assert event.actor_label == actor
    assert (event.ip, event.user_agent) == (HERE.ip, HERE.user_agent)
    assert event.account_id == event.user.account_id
    assert abs(event.at.timestamp() - clock()) < 1800  # server time, moved by the test clock


def test_failed_password_for_an_unknown_login_is_recorded_without_a_user(db, clock):
    attempt(signin.check_password, "nobody", "whatever it is", HERE)
    event = SecurityEvent.objects.get(type="sign_in_failed")
    assert event.user is None and event.ip == HERE.ip


def test_event_detail_never_holds_the_code(enrolled):
    typo = enrolled.codes[0][:-1] + ("2" if enrolled.codes[0][-1] != "2" else "3")
    attempt(signin.check_code, enrolled.user.pk, typo, HERE)
    attempt(signin.check_code, enrolled.user.pk, codes_core.format_code(codes_core.make_code()), HERE)
    signin.check_code(enrolled.user.pk, enrolled.codes[1], HERE)
    for event in SecurityEvent.objects.all():
        text = str(event.detail).lower()
        assert not any(codes_core.normalize_code(c) in text.replace("-", "") for c in enrolled.codes)


def test_user_sees_own_events_newest_first(enrolled, make_user, clock):
    make_user("other")
    signin.check_code(enrolled.user.pk, enrolled.code(), HERE)
    events, next_cursor = activity.own_events(enrolled.user)
    assert next_cursor is None
    assert {e.user_id for e in events} == {enrolled.user.pk}
    assert events[0].type == "sign_in"
    assert [e.pk for e in events] == sorted((e.pk for e in events), reverse=True)
