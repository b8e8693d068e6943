"""TOTP arithmetic (RFC 4226, RFC 6238) and app-code normalising: pure, no database."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twostep.core import totp
from twostep.core.errors import MalformedCode

# RFC 4226 Appendix D and RFC 6238 Appendix B seeds: ASCII digits, 20/32/64 bytes long.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"


def b32(seed: bytes) -> str:
    """Return the seed as our secrets are stored: base32 without padding."""
    return base64.b32encode(seed).decode("ascii").rstrip("=")


# RFC 4226 Appendix D, "HOTP(K,C)" column, counters 0..9.
RFC4226_HOTP = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_HOTP)))
def test_hotp_matches_rfc4226_appendix_d(counter, expected):
    """RFC 4226 Appendix D: the reference values for the 20-byte ASCII seed."""
    assert totp.hotp(b32(SEED_SHA1), counter) == expected


# RFC 6238 Appendix B: (time, TOTP, mode), 8 digits; SHA-256/512 rows use 32/64-byte seeds.
RFC6238_TOTP = [
    (59, "94287082", "sha1"), (59, "46119246", "sha256"), (59, "90693936", "sha512"),
    (1111111109, "07081804", "sha1"), (1111111109, "68084774", "sha256"),
    (1111111109, "25091201", "sha512"),
    (1111111111, "14050471", "sha1"), (1111111111, "67062674", "sha256"),
    (1111111111, "99943326", "sha512"),
    (1234567890, "89005924", "sha1"), (1234567890, "91819424", "sha256"),
    (1234567890, "93441116", "sha512"),
    (2000000000, "69279037", "sha1"), (2000000000, "90698825", "sha256"),
    (2000000000, "38618901", "sha512"),
    (20000000000, "65353130", "sha1"), (20000000000, "77737706", "sha256"),
    (20000000000, "47863826", "sha512"),
]
SEEDS = {"sha1": SEED_SHA1, "sha256": SEED_SHA256, "sha512": SEED_SHA512}


@pytest.mark.parametrize(("unix_time", "expected", "mode"), RFC6238_TOTP)
def test_totp_matches_rfc6238_appendix_b(unix_time, expected, mode):
    """RFC 6238 Appendix B, through our time_step and hotp, for all three hash functions."""
    code = totp.hotp(b32(SEEDS[mode]), totp.time_step(unix_time), digits=8,
                     digest=getattr(hashlib, mode))
    assert code == expected


@pytest.mark.parametrize(("unix_time", "step"), [
    (0, 0), (29.999, 0), (30, 1), (59, 1), (1111111109, 0x23523EC), (1111111111, 0x23523ED),
    (1234567890, 0x273EF07), (20000000000, 0x27BC86AA),
])
def test_time_step_is_floor_of_time_over_30_seconds(unix_time, step):
    """RFC 6238 §4.2 and the T column of Appendix B."""
    assert totp.time_step(unix_time) == step


def test_app_defaults_are_sha1_six_digits_thirty_seconds():
    """SECURITY.md (key URI): apps ignore algorithm/digits/period, so the defaults are fixed."""
    assert (totp.PERIOD, totp.DIGITS, totp.WINDOW) == (30, 6, 1)
    assert totp.hotp(b32(SEED_SHA1), 1) == "287082"


# match_code -------------------------------------------------------------------------------

SECRET = b32(SEED_SHA1)
NOW = 1234567890.0 + 15  # the middle of step 41152263
STEP = totp.time_step(NOW)


def code_at(offset_steps: int, secret: str = SECRET) -> str:
    return totp.hotp(secret, STEP + offset_steps)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_match_code_accepts_one_step_either_side_and_returns_the_step(offset):
    """RFC 6238 §5.2: at most one step of network delay is allowed."""
    match = totp.match_code(SECRET, code_at(offset), NOW)
    assert match == totp.Match(step=STEP + offset, offset=offset)


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_match_code_refuses_two_or_more_steps_away(offset):
    assert code_at(offset) not in {code_at(-1), code_at(0), code_at(1)}  # the vector is usable
    assert totp.match_code(SECRET, code_at(offset), NOW) is None


def test_match_code_refuses_the_code_of_another_secret():
    other = b32(b"abcdefghijabcdefghij")
    assert totp.match_code(SECRET, code_at(0, other), NOW) is None


def test_match_code_window_zero_accepts_only_the_current_step():
    assert totp.match_code(SECRET, code_at(0), NOW, window=0) is not None
    assert totp.match_code(SECRET, code_at(1), NOW, window=0) is None


@pytest.mark.parametrize(("offset", "seconds"), [(2, 60), (-2, -60), (5, 150), (-7, -210), (20, 600)])
def test_find_clock_skew_reports_offset_in_seconds(offset, seconds):
    """A phone clock off by whole steps: the confirm page can say by how much."""
    assert totp.find_clock_skew(SECRET, code_at(offset), NOW) == seconds


@pytest.mark.parametrize("offset", [0, 1, -1, 21, -25])
def test_find_clock_skew_ignores_codes_inside_the_window_and_beyond_the_search(offset):
    assert totp.find_clock_skew(SECRET, code_at(offset), NOW) is None


# normalize_code ---------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "code"), [
    ("123456", "123456"), ("123 456", "123456"), ("123-456", "123456"), (" 123 456 ", "123456"),
    ("12 34 56", "123456"), ("012345", "012345"), ("000000", "000000"),
])
def test_normalize_code_removes_spaces_and_hyphens(typed, code):
    assert totp.normalize_code(typed) == code


@pytest.mark.parametrize("typed", [
    "", "12345", "1234567", "0123456", "+12345", "-12345", "12345a", "1e5123", "12345.",
    "１２３４５６",       # full-width digits: int() reads them as 123456 (SECURITY.md, Otp.NET #7)
    "٠١٢٣٤٥",            # Arabic-Indic digits
    "۱۲۳۴۵۶",            # Extended Arabic-Indic digits
    "१२३४५६",            # Devanagari digits
    "¹²³⁴⁵⁶",            # superscripts: str.isdigit() is true for them
    "12345\u00b2",       # one superscript at the end
    "123\u00a0456",      # no-break space is not a separator we accept
    "12\t3456", "123_456", "0x1234", " ", "------", "1" * 33,
])
def test_normalize_code_refuses_anything_but_six_ascii_digits(typed):
    """DESIGN.md: re.fullmatch("[0-9]{6}") on ASCII, never int() or \\d."""
    with pytest.raises(MalformedCode):
        totp.normalize_code(typed)


@pytest.mark.parametrize("typed", [None, 123456, 123456.0, b"123456", ["123456"]])
def test_normalize_code_refuses_non_strings(typed):
    with pytest.raises(MalformedCode):
        totp.normalize_code(typed)


# secrets ----------------------------------------------------------------------------------

def test_new_secret_is_160_bits_of_unpadded_base32():
    """NIST SP 800-63B-4 §3.1.4: key ≥ 112 bits; we use 160 (RFC 4226 §4)."""
    secret = totp.new_secret()
    assert len(secret) == 32 and "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_new_secret_takes_its_bytes_from_the_given_source():
    asked = []

    def token_bytes(n):
        asked.append(n)
        return bytes(range(n))

    assert base64.b32decode(totp.new_secret(token_bytes)) == bytes(range(20))
    assert asked == [20]


def test_group_secret_splits_into_fours():
    assert totp.group_secret("ABCDEFGHIJKLMNOP") == "ABCD EFGH IJKL MNOP"
    assert totp.group_secret("ABCDEF") == "ABCD EF"


def test_core_imports_no_django():
    """STYLE.md habit 1: the pure core runs without Django."""
    program = ("import sys; import twostep.core.totp, twostep.core.backup_codes, twostep.core.clock; "
               "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)")
    src = Path(totp.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    assert subprocess.run([sys.executable, "-c", program], env=env, check=False).returncode == 0
