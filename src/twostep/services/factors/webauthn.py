"""Security keys and passkeys (WebAuthn)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ...models import Authenticator

METHOD = "webauthn"
KIND = Authenticator.Kind.WEBAUTHN
AMR = ("hwk",)


def offered(user, facts) -> bool:
    return KIND in facts.kinds


def describe(authenticator: Authenticator) -> str:
    return str(_("Passkey") if authenticator.passkey else _("Security key"))


def verify(user, proof, now, origin):
    return None
