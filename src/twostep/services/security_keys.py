"""Adding a security key or passkey: the two requests of a WebAuthn registration.

The first asks for the password again (ASVS 7.5.1) and returns the creation options; the
session keeps their challenge, the name and the kind for five minutes. The second checks the
browser's answer and stores the key with what every new authenticator brings (audit, mail,
the first backup codes) through `authenticators.add_confirmed`.
"""

from __future__ import annotations

from django.db import IntegrityError
from django.utils.translation import gettext_lazy as _

from ..models import User
from . import authenticators
from .audit import Origin
from .errors import Conflict
from .factors import webauthn
from .reauth import confirm_password

REGISTRATION = "webauthn_registration"


def start(session, user: User, password: str | None, origin: Origin, rp: webauthn.RelyingParty, *,
          name=None, passkey: bool = False, fresh: bool = False) -> dict:
    """Return the options for navigator.credentials.create(); the session keeps the challenge."""
    default = webauthn.DEFAULT_PASSKEY_NAME if passkey else webauthn.DEFAULT_KEY_NAME
    name = authenticators.clean_name(name, default)
    confirm_password(user, password, origin, fresh=fresh)
    options, ceremony = webauthn.registration_options(user, rp, passkey=bool(passkey), name=name)
    session.put(REGISTRATION, ceremony.to_json())
    return options


def finish(session, user: User, credential, origin: Origin) -> authenticators.Added:
    """Check the browser's answer and add the key to the user's authenticators.

    After a sign-in without an authenticator (a backup code, an admin's pass) the key comes with
    a fresh set of backup codes, as a new app does.
    """
    from . import signin

    ceremony = webauthn.Ceremony.from_json(session.take(REGISTRATION))
    fields = webauthn.check_registration(user, credential, ceremony)
    try:
        terms = signin.new_authenticator_terms(session, replace_apps=False)
        return authenticators.add_confirmed(user, fields, origin, new_codes=terms["new_codes"])
    except IntegrityError:  # the same key, registered by a concurrent request a moment ago
        raise Conflict(_("This security key is registered already.")) from None
