"""TOTP (RFC 6238) over HOTP (RFC 4226), as authenticator apps read it: SHA-1, 6 digits, 30 s.

Everything here takes the time and the secret as arguments, so the RFC test vectors run
without a clock or a database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pyotp

from .errors import MalformedCode

PERIOD = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits: RFC 4226 §4 recommends it; NIST 800-63B §3.1.4 asks ≥ 112.
# Accept the step before and after the current one (RFC 6238 §5.2: one step of network delay).
WINDOW = 1
# How far the clock check looks for a code typed on a phone whose clock is off (±10 minutes).
CLOCK_SKEW_SEARCH = 20

_CODE = re.compile(r"[0-9]{6}")  # ASCII only: never int() or \d (SECURITY.md: Otp.NET #7).
_SEPARATORS = re.compile(r"[ \-]")


def new_secret(token_bytes=secrets.token_bytes) -> str:
    """Return a fresh base32 secret (no padding), as the key URI carries it."""
    return base64.b32encode(token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def group_secret(secret: str) -> str:
    """Split a base32 secret into groups of four for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def time_step(unix_time: float, period: int = PERIOD) -> int:
    """Return the RFC 6238 counter T = floor(unix_time / period)."""
    return int(unix_time // period)


def hotp(secret: str, counter: int, digits: int = DIGITS, digest=hashlib.sha1) -> str:
    """Return the HOTP value (RFC 4226 §5.3) for a base32 secret and counter."""
    return pyotp.HOTP(secret, digits=digits, digest=digest).at(counter)


def normalize_code(text: str) -> str:
    """Return the six ASCII digits of an app code typed with spaces or hyphens.

    Raise MalformedCode for anything else: letters, signs, full-width or other non-ASCII
    digits, a wrong length.
    """
    if not isinstance(text, str) or len(text) > 32:
        raise MalformedCode("an app code is six digits")
    code = _SEPARATORS.sub("", text.strip())
    if not _CODE.fullmatch(code):
        raise MalformedCode("an app code is six digits")
    return code


@dataclass(frozen=True)
class Match:
    """A code that matched: its time step, and how far that is from the server's step."""

    step: int
    offset: int  # steps; 0 means the phone's clock agrees with ours


def match_code(secret: str, code: str, unix_time: float, window: int = WINDOW) -> Match | None:
    """Return the newest step within ±window whose code equals `code`, or None.

    Every candidate is compared in constant time and none is skipped, so the time taken does
    not tell which step matched.
    """
    now = time_step(unix_time)
    found = None
    for offset in range(-window, window + 1):
        if hmac.compare_digest(hotp(secret, now + offset).encode(), code.encode()):
            found = Match(step=now + offset, offset=offset)
    return found


def find_clock_skew(secret: str, code: str, unix_time: float,
                    search: int = CLOCK_SKEW_SEARCH) -> int | None:
    """Return the offset in seconds of a code valid outside the window, for a clock hint.

    Only used while confirming a new authenticator: it explains a phone whose clock is off
    instead of saying "wrong code". Never used at sign-in, where it would widen the window.
    """
    now = time_step(unix_time)
    for distance in range(WINDOW + 1, search + 1):
        for offset in (-distance, distance):
            if hmac.compare_digest(hotp(secret, now + offset).encode(), code.encode()):
                return offset * PERIOD
    return None


def _label_part(text: str) -> str:
    # Key URI format: no colon inside the issuer or account name.
    return text.replace(":", " ").strip()


def provisioning_uri(secret: str, login: str, issuer: str) -> str:
    """Return the otpauth:// URI that authenticator apps read from a QR code.

    Google Authenticator's format: issuer in the label and as issuer=, unpadded base32;
    algorithm, digits and period are the defaults every app assumes.
    """
    issuer = _label_part(issuer)
    label = quote(f"{issuer}:{_label_part(login)}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"
