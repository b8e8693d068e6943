"""Django's CSRF secrets and masks, drawn from one read of the system's random source.

Django makes each CSRF string — a browser's secret, and the mask that makes every page's token
different (BREACH) — with `get_random_string`, which draws its 32 characters one at a time with
`secrets.choice`: one read of the random source, a system call, per character, about 30 µs a
string. A web sign-in makes four of them (the new browser's secret, the masks of the two pages,
the secret rotated at sign-in): 132 system calls. The same strings — 32 characters of the same
62, each uniformly and independently drawn from the same source — come from one read here.

`install()` puts `new_csrf_string` in the place of `django.middleware.csrf._get_new_csrf_string`,
the one function through which Django's CSRF code makes secrets and masks (Django 5.2); every
other part of the protection (the cookie, the check, the rotation at sign-in) stays Django's.
A test holds Django's CSRF code to calling it, so a Django that changes that seam fails there
instead of silently drawing characters one at a time again.
"""

from __future__ import annotations

import secrets

from django.middleware import csrf

ALPHABET = csrf.CSRF_ALLOWED_CHARS  # 62 characters: letters and digits
LENGTH = csrf.CSRF_SECRET_LENGTH  # 32
# A byte below 248 (4 × 62) maps onto the alphabet evenly; the 8 values above are drawn again.
# Taking them too would make the first 8 characters a quarter more likely than the others.
_EVEN = 256 - 256 % len(ALPHABET)
_READ = LENGTH + 16  # one read nearly always suffices: 32 of 48 bytes below 248


def new_csrf_string(token_bytes=None) -> str:
    """Return LENGTH characters of ALPHABET, each uniformly random, from one read of the source."""
    read = token_bytes or secrets.token_bytes
    chars: list[str] = []
    while len(chars) < LENGTH:
        chars += [ALPHABET[byte % len(ALPHABET)] for byte in read(_READ) if byte < _EVEN]
    return "".join(chars[:LENGTH])


def install() -> None:
    """Make Django's CSRF code draw its secrets and masks with `new_csrf_string`."""
    csrf._get_new_csrf_string = new_csrf_string
