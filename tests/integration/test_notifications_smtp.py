"""The mail harness of the notification tests (no tests here): a real SMTP server and its inbox.

Mails are triggered through the service functions and delivered by Django's SMTP backend to an
aiosmtpd server on a free local port; `Inbox` parses what arrived with the `email` module.
A test module imports `inbox_fixture` and `smtp_server_fixture` to get the fixtures `inbox`
(autouse) and `smtp_server`.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
import pytest
from aiosmtpd.controller import Controller

from twostep.services import signin
from twostep.services.errors import InvalidCode

from ..conftest import ORIGIN

# Mid-step (09:26:15 UTC), so the fixtures' TOTP arithmetic is unambiguous; mails show 9:26.
EVENT_TIME = datetime(2031, 3, 14, 9, 26, 15, tzinfo=UTC)
ADMIN_ORIGIN = ORIGIN.__class__(ip="203.0.113.5", user_agent="admin's browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collector:
    """An aiosmtpd handler that keeps every envelope, or refuses every recipient when told to
    (`refuse = True` for a 550, or the reply to give, e.g. a 451 to be tried again later), or
    the addresses in `refused` with their reply. `connections` has, for each envelope, the
    client's address and port: mails sent over one connection share it."""

    def __init__(self):
        self.envelopes = []
        self.connections = []
        self.refuse = False
        self.refused = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse if isinstance(self.refuse, str) else "550 5.1.1 No such mailbox here"
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.connections.append(session.peer)
        return "250 Message accepted for delivery"


@dataclass
class Mail:
    """One delivered message: the envelope and its parsed parts."""

    sender: str
    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        # Django folds a long encoded subject onto a continuation line; drop that whitespace.
        return str(self.message["Subject"]).strip()

    def part(self, content_type: str) -> str:
        parts = [p for p in self.message.walk() if p.get_content_type() == content_type]
        assert len(parts) == 1, f"expected one {content_type} part, found {len(parts)}"
        return parts[0].get_content()

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")

    @property
    def html_words(self) -> str:
        """The HTML part as a reader sees it: tags dropped, entities decoded, spaces folded."""
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", self.html)).split())

    def says(self, phrase: str) -> bool:
        """Tell whether both the text and the HTML part carry the phrase."""
        return phrase in " ".join(self.text.split()) and phrase in self.html_words


class Inbox:
    def __init__(self, collector: Collector):
        self._collector = collector

    @property
    def mails(self) -> list[Mail]:
        return [Mail(e.mail_from, list(e.rcpt_tos),
                     email.message_from_bytes(e.content, policy=email.policy.default))
                for e in self._collector.envelopes]

    def subjects(self) -> list[str]:
        return [m.subject.split("] ", 1)[1] for m in self.mails]

    def only(self) -> Mail:
        mails = self.mails
        assert len(mails) == 1, [m.subject for m in mails]
        return mails[0]

    def clear(self) -> None:
        self._collector.envelopes.clear()
        self._collector.connections.clear()

    def connections(self) -> int:
        """How many SMTP connections the mails came over."""
        return len(set(self._collector.connections))


@pytest.fixture(scope="module", name="smtp_server")
def smtp_server_fixture():
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(autouse=True, name="inbox")
def inbox_fixture(smtp_server, settings, clock):
    """Deliver through the SMTP server from the first mail of the test on; the clock at EVENT_TIME."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.DEFAULT_FROM_EMAIL = "Acme sign-in <noreply@acme.example>"
    settings.TWOSTEP_ISSUER = "Acme"
    clock.value = EVENT_TIME.timestamp()
    smtp_server.handler.refuse = False
    smtp_server.handler.refused = {}
    inbox = Inbox(smtp_server.handler)
    inbox.clear()
    return inbox


def wrong_app_code(secret: str, now: float) -> str:
    near = {pyotp.TOTP(secret).at(now + 30 * offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def fail_second_step(user, secret: str, clock) -> None:
    with pytest.raises(InvalidCode):
        signin.check_code(user.pk, wrong_app_code(secret, clock()), ORIGIN, method="totp")
