"""Backup codes (NIST SP 800-63B-4 look-up secrets and saved recovery codes).

A code is 15 random symbols from a 31-symbol alphabet without look-alikes (74 bits, above the
64 NIST asks) and one check symbol, shown as ``xxxx-xxxx-xxxx-xxxx``. The check symbol lets the
sign-in page say "this code has a typo" without a database look-up: a weighted sum modulo the
prime 31 catches every single wrong symbol and every swap of neighbours.

Codes are stored only as HMAC-SHA256(key, salt || code): a keyed, salted hash whose key lives
outside the database, so checking a code is one indexed look-up and a database dump is useless.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from .errors import MalformedCode

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i
assert len(ALPHABET) == 31
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
RANDOM_SYMBOLS = 15
LENGTH = RANDOM_SYMBOLS + 1
COUNT = 10
_SEPARATORS = re.compile(r"[\s\-]")


def _check_symbol(symbols: str) -> str:
    # Choose c so that sum(i * v_i for i = 1..16) ≡ 0 (mod 31).
    total = sum((i + 1) * _VALUE[s] for i, s in enumerate(symbols))
    weight = len(symbols) + 1
    # weight * c ≡ -total (mod 31); 31 is prime, so the inverse exists.
    return ALPHABET[(-total * pow(weight, -1, 31)) % 31]


def make_code(choice=secrets.choice) -> str:
    """Return one new code of 16 symbols, check symbol last, without separators."""
    body = "".join(choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return body + _check_symbol(body)


def make_codes(count: int = COUNT, choice=secrets.choice) -> list[str]:
    """Return `count` distinct new codes."""
    codes: list[str] = []
    while len(codes) < count:
        code = make_code(choice)
        if code not in codes:
            codes.append(code)
    return codes


def format_code(code: str) -> str:
    """Return a code as it is shown: four groups of four."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def looks_like_backup_code(text: str) -> bool:
    """Tell whether the text is long enough to be meant as a backup code rather than an app code."""
    return len(_SEPARATORS.sub("", text or "")) > 8


def normalize_code(text: str) -> str:
    """Return the 16 symbols of a typed code: case, spaces and hyphens do not matter.

    Raise MalformedCode when it cannot be a code (wrong length, a symbol outside the alphabet,
    a wrong check symbol): that is a typo, told apart from a wrong code without a look-up.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise MalformedCode("not a backup code")
    code = _SEPARATORS.sub("", text)
    if not code.isascii():  # .lower() would turn the Kelvin sign into "k"
        raise MalformedCode("not a backup code")
    code = code.lower()
    if len(code) != LENGTH or any(symbol not in _VALUE for symbol in code):
        raise MalformedCode("not a backup code")
    if not hmac.compare_digest(_check_symbol(code[:-1]), code[-1]):
        raise MalformedCode("not a backup code")
    return code


def new_salt() -> str:
    """Return a fresh per-set salt (hex)."""
    return secrets.token_hex(16)


def hash_code(code: str, salt: str, key: bytes) -> str:
    """Return the stored form of a normalised code: hex HMAC-SHA256(key, salt || code)."""
    message = f"{salt}:{code}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()
