"""What every page template can use: the service's name, the languages, the visitor's state."""

from django.conf import settings

from .. import signin_state
from ..services.signin import SETUP_REQUIRED


def site(request):
    def in_sign_in():
        # Signed in, or half-way through: either way the header offers "Sign out".
        return signin_state.stage(request) != "anonymous"

    def setup_forced():
        # Held on the setup page by the account's policy: links elsewhere would only lead back.
        return signin_state.stage(request) == SETUP_REQUIRED

    user = getattr(request, "user", None)
    return {
        "service_name": settings.TWOSTEP_ISSUER,
        "language_choices": settings.LANGUAGES,
        "show_sign_out": in_sign_in,
        "setup_forced": setup_forced,
        "is_account_admin": bool(user is not None and user.is_authenticated and user.is_account_admin),
        "two_factor_deadline": lambda: _deadline(user),  # the banner, read only when a page shows it
    }


def _deadline(user):
    """Return the required-2FA date a signed-in user without 2FA should be warned of, or None."""
    if user is None or not user.is_authenticated:
        return None
    from ..services.deadlines import pending_deadline

    return pending_deadline(user)
