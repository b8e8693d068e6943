"""User agents in words: "Chrome on Android" for a person, the raw header kept for the record.

A dozen patterns cover the browsers people sign in with; anything else is "Unknown browser"
rather than a guess. No dependency: the header is only named, never trusted for a decision.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

# What services.audit.Origin.cli() stores as the user agent of an action taken with the command.
COMMAND_LINE = "twostep command line"

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", iOS browsers say "Mac OS X".
_BROWSERS = (
    (r"Edg(e|A|iOS)?/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"SamsungBrowser/", "Samsung Internet"),
    (r"YaBrowser/", "Yandex Browser"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
    (r"^curl/", "curl"),
)
_SYSTEMS = (
    (r"Android", "Android"),
    (r"iPhone|iPad|iPod", "iOS"),
    (r"CrOS", "ChromeOS"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "macOS"),
    (r"Linux|X11", "Linux"),
)


def browser_name(user_agent: str | None) -> str:
    """Name a browser for a person, e.g. "Chrome on Android", from its User-Agent header."""
    agent = user_agent or ""
    if agent == COMMAND_LINE:
        return _("the twostep command line")
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, agent)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, agent)), None)
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    if browser or system:
        return browser or _("A browser on %(system)s") % {"system": system}
    return _("Unknown browser")
