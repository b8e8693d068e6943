"""The pages and the API sign people in alike: one table of scenarios, run through each.

Each scenario is written once, in words both transports share (the stage a step leads to, the
status of a refusal), and runs twice: through the sign-in pages with a browser-like client and
through the JSON API. Both runs must end the same way: the session's stage and user, what the
session proved, the security events recorded, the mails sent, the user's failure counter, the
backup codes left and who still has a session. The expected outcome sits in the table, so a
transport that drifts from the shared flow fails its row.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pyotp
import pytest
from django.core import mail
from django.test import Client

from twostep import signin_state
from twostep.models import Account, SecurityEvent, User, UserSession
from twostep.services import recovery_passes
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD
from .test_api_support import Api

# on_commit runs, so mail leaves as in production and each run sees the mails its steps sent.
pytestmark = pytest.mark.django_db(transaction=True)


# What a step led to, in words both transports share ------------------------------------------

AUTHENTICATED, SECOND_FACTOR, SETUP_REQUIRED, ANONYMOUS = (
    "authenticated", "second_factor", "setup_required", "anonymous")


@dataclass(frozen=True)
class Step:
    """One step's answer: the stage it leads to, or the refusal (status, message, Retry-After)."""

    stage: str | None = None
    status: int | None = None  # the HTTP status of a refusal
    message: str = ""
    retry_after: int | None = None
    recovery: bool = False  # led on to a new authenticator (the lost-phone path)

    def refused(self, status: int, text: str) -> None:
        assert self.stage is None, f"expected a refusal, the step led to {self.stage}"
        assert self.status == status, (self.status, self.message)
        assert text in self.message, self.message


class Web:
    """The sign-in pages, as a browser uses them: forms posted, redirects read."""

    name = "web"
    PAGES = {"totp": "/login/code", "backup_code": "/login/backup-code",
             "recovery_pass": "/login/recovery-pass"}
    LEADS_TO = {"/security": AUTHENTICATED, "/security/recover": AUTHENTICATED,
                "/security/setup": SETUP_REQUIRED, **{page: SECOND_FACTOR for page in PAGES.values()},
                "/login/key": SECOND_FACTOR}

    def __init__(self) -> None:
        self.client = Client()

    def _step(self, response) -> Step:
        if response.status_code == 302:
            target = response["Location"].split("?")[0]
            return Step(stage=self.LEADS_TO[target], recovery=target == "/security/recover")
        assert 400 <= response.status_code < 500, response.status_code
        retry = response.get("Retry-After")
        return Step(status=response.status_code, message=self.errors(response.content.decode()),
                    retry_after=int(retry) if retry is not None else None)

    @staticmethod
    def errors(page: str) -> str:
        """The error text a reader is shown: the page's alert and the fields' error lists."""
        found = re.findall(r'id="page-error">(.*?)</p>', page, re.S)
        found += re.findall(r'<ul class="errorlist"[^>]*>(.*?)</ul>', page, re.S)
        return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(found))).strip()

    def password(self, login: str, password: str = PASSWORD) -> Step:
        return self._step(self.client.post("/login", {"login": login, "password": password}))

    def second(self, method: str, code: str) -> Step:
        return self._step(self.client.post(self.PAGES[method], {"code": code}))

    def new_app(self, clock) -> tuple[str, list[str]]:
        """Set up an authenticator app on the setup pages; return its key and the codes shown."""
        started = self.client.post("/security/setup", {"password": PASSWORD})
        assert started.status_code == 302 and started["Location"] == "/security/setup", started.status_code
        page = self.client.get("/security/setup").content.decode()
        secret = re.search(r'data-copy-text="([A-Z2-7]+)"', page).group(1)
        confirmed = self.client.post("/security/setup/confirm", {"code": pyotp.TOTP(secret).at(clock())})
        assert confirmed.status_code == 302 and confirmed["Location"] == "/security/backup-codes/new"
        shown = self.client.get(confirmed["Location"])
        assert shown.status_code == 200, shown.status_code
        return secret, re.findall(r"<li><code>([^<]+)</code></li>", shown.content.decode())

    def sign_out(self) -> None:
        assert self.client.post("/logout").status_code == 302


class JsonApi:
    """The JSON API, as a single-page app uses it (CSRF header and all)."""

    name = "api"

    def __init__(self) -> None:
        self.api = Api()
        self.client = self.api.client

    def _step(self, response) -> Step:
        body = response.json()
        if response.status_code == 200:
            return Step(stage=body["stage"], recovery=body.get("method") in ("backup_code", "recovery_pass"))
        retry = response.get("Retry-After")
        return Step(status=response.status_code, message=body["message"],
                    retry_after=int(retry) if retry is not None else None)

    def password(self, login: str, password: str = PASSWORD) -> Step:
        return self._step(self.api.login(login, password))

    def second(self, method: str, code: str) -> Step:
        return self._step(self.api.second_factor(code, method))

    def new_app(self, clock) -> tuple[str, list[str]]:
        started = self.api.post("/me/two-factor/setup", {"password": PASSWORD})
        assert started.status_code == 200, started.content
        secret = started.json()["secret"]
        confirmed = self.api.post("/me/two-factor/confirm", {"code": pyotp.TOTP(secret).at(clock())})
        assert confirmed.status_code == 200, confirmed.content
        return secret, confirmed.json()["backup_codes"] or []

    def sign_out(self) -> None:
        assert self.api.post("/auth/logout").status_code == 200


TRANSPORTS = {"web": Web, "api": JsonApi}


# What both runs must agree on ----------------------------------------------------------------

@dataclass
class World:
    """The people of a scenario and the moment its outcome starts counting from."""

    t: Web | JsonApi
    clock: object
    admin: User
    member: User
    enrolled: object = None  # conftest.Enrolled once the member has an app
    recovery_pass: str | None = None
    first_event: int = 0

    def start_counting(self) -> None:
        self.first_event = (SecurityEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        mail.outbox.clear()

    def wrong_code(self) -> str:
        return f"{(int(self.enrolled.code()) + 500_000) % 1_000_000:06d}"

    def session(self) -> dict:
        """What GET /api/v1/auth/session says of this client's session (either transport's cookie)."""
        return self.t.client.get("/api/v1/auth/session").json()

    def proof(self) -> dict:
        return self.t.client.session.get(signin_state.PROOF) or {}

    def failures(self) -> int:
        return User.objects.get(pk=self.member.pk).second_factor_failures


@dataclass(frozen=True)
class Outcome:
    stage: str
    signed_in_as: str | None
    recovery: str | None  # what the session proved: got in without an authenticator
    events: list[tuple[str, str | None, str | None]]  # (type, detail.method, user's login)
    mails: list[tuple[str, str]]  # (to, subject without the "[issuer] " prefix)
    failures: int  # the member's second-factor failure counter
    codes_left: int  # the member's unused backup codes
    live_sessions: dict[str, int] = field(default_factory=dict)  # login -> sessions still signed in


def observe(world: World) -> Outcome:
    session = world.session()
    events = SecurityEvent.objects.filter(pk__gte=world.first_event).select_related("user").order_by("pk")
    member = User.objects.get(pk=world.member.pk)
    return Outcome(
        stage=session["stage"],
        signed_in_as=session["user"]["login"] if session["stage"] == AUTHENTICATED else None,
        recovery=world.proof().get("recovery"),
        events=[(e.type, e.detail.get("method"), e.user.login if e.user else None) for e in events],
        mails=[(m.to[0].split("@")[0], m.subject.split("] ", 1)[-1]) for m in mail.outbox],
        failures=member.second_factor_failures,
        codes_left=backup_codes.remaining(member),
        live_sessions={login: UserSession.objects.filter(user__login=login).count()
                       for login in ("admin", "member")},
    )


# The scenarios -------------------------------------------------------------------------------

def given_enrolled(world: World, enroll) -> None:
    world.enrolled = enroll(world.member)


def given_pass(world: World, enroll) -> None:
    given_enrolled(world, enroll)
    enroll(world.admin)  # an admin acts on someone else's factors only with their own
    issued = recovery_passes.issue(world.admin, world.member.pk, "lost phone, checked by video call",
                                   PASSWORD, ORIGIN, second_factor_fresh=True)
    world.recovery_pass = issued.code


def given_required(world: World, enroll) -> None:
    Account.objects.filter(pk=world.admin.account_id).update(require_two_factor=True)  # as the policy left it


def app_code(w: World) -> None:
    assert w.t.password("member") == Step(stage=SECOND_FACTOR)
    assert w.t.second("totp", w.enrolled.code()) == Step(stage=AUTHENTICATED)


def backup_code(w: World) -> None:
    assert w.t.password("member") == Step(stage=SECOND_FACTOR)
    # Signed in, and led on to a new authenticator (web: /security/recover; API: the method).
    assert w.t.second("backup_code", w.enrolled.codes[0]) == Step(stage=AUTHENTICATED, recovery=True)


def recovery_pass(w: World) -> None:
    assert w.t.password("member") == Step(stage=SECOND_FACTOR)
    assert w.t.second("recovery_pass", w.recovery_pass) == Step(stage=AUTHENTICATED, recovery=True)
    w.t.sign_out()
    w.t.password("member")
    w.t.second("recovery_pass", w.recovery_pass).refused(401, "")  # a pass is good once


def wrong_code(w: World) -> None:
    w.t.password("member")
    w.t.second("totp", w.wrong_code()).refused(401, "That code is not right")
    assert w.failures() == 1  # counted once, whichever transport carried it


def throttled(w: World) -> None:
    w.t.password("member")
    for _ in range(6):  # five free attempts, then each failure makes the next one wait
        w.t.second("totp", w.wrong_code()).refused(401, "That code is not right")
    refused = w.t.second("totp", w.enrolled.code())  # right, but not even checked
    refused.refused(429, "Too many failed attempts")
    assert refused.retry_after == 30
    w.clock.advance(10)
    assert w.t.second("totp", w.enrolled.code()).retry_after == 20


def lost_phone(w: World) -> None:
    w.t.password("member")
    assert w.t.second("backup_code", w.enrolled.codes[0]) == Step(stage=AUTHENTICATED, recovery=True)
    secret, new_codes = w.t.new_app(w.clock)
    assert len(new_codes) == 10 and not set(new_codes) & set(w.enrolled.codes)
    assert w.proof()["recovery"] is None  # the new phone is in place
    w.t.sign_out()
    w.t.password("member")
    w.t.second("backup_code", w.enrolled.codes[1]).refused(401, "")  # the old set is gone
    w.t.second("totp", w.enrolled.code(1)).refused(401, "")  # and so is the old app
    w.clock.advance(30)
    assert w.t.second("totp", pyotp.TOTP(secret).at(w.clock())) == Step(stage=AUTHENTICATED)
    w.t.sign_out()
    w.t.password("member")
    assert w.t.second("backup_code", new_codes[0]) == Step(stage=AUTHENTICATED, recovery=True)


def setup_required(w: World) -> None:
    assert w.t.password("member") == Step(stage=SETUP_REQUIRED)
    assert w.session()["stage"] == SETUP_REQUIRED and w.session()["user"]["login"] == "member"
    _, codes = w.t.new_app(w.clock)
    assert len(codes) == 10


def new_sign_in_over_old(w: World) -> None:
    assert w.t.password("admin") == Step(stage=AUTHENTICATED)
    assert w.t.password("member") == Step(stage=SECOND_FACTOR)  # the admin's sign-in ends here
    session = w.session()
    assert session["stage"] == SECOND_FACTOR and session["user"]["login"] == "member"
    assert w.t.second("totp", w.enrolled.code()) == Step(stage=AUTHENTICATED)


def replayed_code(w: World) -> None:
    code = w.enrolled.code()
    w.t.password("member")
    assert w.t.second("totp", code) == Step(stage=AUTHENTICATED)
    w.t.sign_out()
    w.t.password("member")
    w.t.second("totp", code).refused(401, "That code was used a moment ago")
    assert w.failures() == 1


@dataclass(frozen=True)
class Scenario:
    given: Callable
    run: Callable[[World], None]
    outcome: Outcome

    @property
    def name(self) -> str:
        return self.run.__name__


FAILED = ("second_factor_failed", "totp", "member")
SOMEONE_HAS_YOUR_PASSWORD = ("member", "Someone entered your password but not the right code")

SCENARIOS = [
    Scenario(given_enrolled, app_code, Outcome(
        stage=AUTHENTICATED, signed_in_as="member", recovery=None,
        events=[("sign_in", "totp", "member")], mails=[], failures=0, codes_left=10,
        live_sessions={"admin": 0, "member": 1})),
    Scenario(given_enrolled, backup_code, Outcome(
        stage=AUTHENTICATED, signed_in_as="member", recovery="backup_code",
        events=[("backup_code_used", None, "member"), ("sign_in", "backup_code", "member")],
        mails=[("member", "A backup code was used to sign in")], failures=0, codes_left=9,
        live_sessions={"admin": 0, "member": 1})),
    Scenario(given_pass, recovery_pass, Outcome(
        stage=SECOND_FACTOR, signed_in_as=None, recovery=None,
        events=[("recovery_pass_used", None, "member"), ("sign_in", "recovery_pass", "member"),
                ("sign_out", None, "member"), ("second_factor_failed", "recovery_pass", "member")],
        mails=[("member", "A one-time sign-in pass was used"), SOMEONE_HAS_YOUR_PASSWORD],
        failures=1, codes_left=10, live_sessions={"admin": 0, "member": 0})),
    Scenario(given_enrolled, wrong_code, Outcome(
        stage=SECOND_FACTOR, signed_in_as=None, recovery=None, events=[FAILED],
        mails=[SOMEONE_HAS_YOUR_PASSWORD], failures=1, codes_left=10,
        live_sessions={"admin": 0, "member": 0})),
    Scenario(given_enrolled, throttled, Outcome(
        stage=SECOND_FACTOR, signed_in_as=None, recovery=None,
        events=[FAILED] * 6 + [("throttled", None, "member")] * 2,
        mails=[SOMEONE_HAS_YOUR_PASSWORD], failures=6, codes_left=10,
        live_sessions={"admin": 0, "member": 0})),
    Scenario(given_enrolled, lost_phone, Outcome(
        stage=AUTHENTICATED, signed_in_as="member", recovery="backup_code",
        events=[("backup_code_used", None, "member"), ("sign_in", "backup_code", "member"),
                ("authenticator_replaced", None, "member"), ("backup_codes_generated", None, "member"),
                ("sign_out", None, "member"),
                ("second_factor_failed", "backup_code", "member"), FAILED,
                ("sign_in", "totp", "member"), ("sign_out", None, "member"),
                ("backup_code_used", None, "member"), ("sign_in", "backup_code", "member")],
        mails=[("member", "A backup code was used to sign in"), ("member", "A new authenticator was registered"),
               SOMEONE_HAS_YOUR_PASSWORD,
               ("member", "A backup code was used to sign in")],
        failures=0, codes_left=9, live_sessions={"admin": 0, "member": 1})),
    Scenario(given_required, setup_required, Outcome(
        stage=AUTHENTICATED, signed_in_as="member", recovery=None,
        events=[("two_factor_enabled", None, "member"), ("backup_codes_generated", None, "member"),
                ("sign_in", "totp_setup", "member")],
        mails=[("member", "Two-factor authentication is now on")], failures=0, codes_left=10,
        live_sessions={"admin": 0, "member": 1})),
    Scenario(given_enrolled, new_sign_in_over_old, Outcome(
        stage=AUTHENTICATED, signed_in_as="member", recovery=None,
        events=[("sign_in", "password", "admin"), ("sign_out", None, "admin"), ("sign_in", "totp", "member")],
        mails=[], failures=0, codes_left=10, live_sessions={"admin": 0, "member": 1})),
    # The same person a moment later from the same address: told, counted, not alarmed by mail.
    Scenario(given_enrolled, replayed_code, Outcome(
        stage=SECOND_FACTOR, signed_in_as=None, recovery=None,
        events=[("sign_in", "totp", "member"), ("sign_out", None, "member"), FAILED],
        mails=[], failures=1, codes_left=10, live_sessions={"admin": 0, "member": 0})),
]


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_pages_and_api_reach_the_same_outcome(scenario, transport, admin, make_user, enroll, clock):
    world = World(TRANSPORTS[transport](), clock, User.objects.get(pk=admin.pk), make_user("member"))
    scenario.given(world, enroll)
    world.start_counting()
    scenario.run(world)
    assert observe(world) == scenario.outcome

