"""The pages' own addresses, reversed once per process instead of on every render.

Django's `reverse` walks the URL patterns each time it is asked: about 30 µs, and the sign-in
pages ask for a dozen links between them (the header, the form's action, the way back). A link
without arguments always comes out the same for the same URL configuration, script prefix and
current app, so it is kept under those. Links with arguments, and names that do not reverse, go
to Django every time (a failure is never kept).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf
from django.urls import reverse as django_reverse


def reverse(viewname: str, *, current_app: str | None = None) -> str:
    """Return the path of the argument-less URL `viewname`, as django.urls.reverse would."""
    if not isinstance(viewname, str):
        return django_reverse(viewname, current_app=current_app)
    return _kept(viewname, current_app, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


@lru_cache(maxsize=1024)  # names come from the code, prefixes from the deployment: a handful
def _kept(viewname: str, current_app: str | None, urlconf: str, prefix: str) -> str:
    # get_script_prefix() is read again inside reverse(): the same thread, the same value.
    return django_reverse(viewname, urlconf=urlconf, current_app=current_app)
