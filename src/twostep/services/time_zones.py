"""The time zone pages show times in: an IANA name, checked, and remembered on the user.

The browser says its zone once (a cookie its script sets); a signed-in user without a saved
zone keeps that one, and may choose another on the time-zone page. Times are stored in UTC
whatever the choice; only their display changes.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.utils.translation import gettext as _

from ..models import User
from .errors import InvalidInput

# The cookie the pages' script sets to the browser's zone (Intl.DateTimeFormat().resolvedOptions()).
COOKIE = "twostep_tz"
MAX_LENGTH = 64  # User.time_zone's length; the longest IANA name is 32


@cache
def names() -> frozenset[str]:
    """Every zone name the server's time zone database knows."""
    return frozenset(zoneinfo.available_timezones())


def is_known(name) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_LENGTH and name in names()


def check(name) -> str:
    """Return `name` if it is a known IANA zone; raise InvalidInput naming the field otherwise."""
    name = name.strip() if isinstance(name, str) else ""
    if not is_known(name):
        message = _("That is not a time zone this server knows. Choose one from the list.")
        raise InvalidInput(message, fields={"time_zone": str(message)})
    return name


def choices() -> list[str]:
    """The zones to choose from, by region then city ("Europe/Moscow"), then the rest ("UTC")."""
    return sorted(names(), key=lambda name: ("/" not in name, name))


def remember(user: User, name: str) -> str:
    """Save the zone the user reads times in (checked first); return it."""
    name = check(name)
    User.objects.filter(pk=user.pk).update(time_zone=name)
    user.time_zone = name
    return name


def zone_for(user: User | None, offered: str | None) -> str:
    """The zone to show times in: the user's saved one, else the browser's, else "" (the server's).

    A signed-in user who has none yet keeps the browser's: the first page after signing in
    remembers it, so a later browser without the cookie shows the same times.
    """
    saved = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
    if is_known(saved):
        return saved
    if not is_known(offered):
        return ""
    if user is not None and user.is_authenticated:
        remember(user, offered)
    return offered
