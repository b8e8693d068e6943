"""Backup codes: making, formatting, normalising, check symbol, hashing (pure, no database)."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import math
import random
import re
import secrets

import pytest

from twostep.core import backup_codes as bc
from twostep.core.errors import MalformedCode

FORMATTED = re.compile(r"[23456789a-hjkmnp-z]{4}(-[23456789a-hjkmnp-z]{4}){3}")


def seeded_codes(count: int, seed: int = 2024) -> list[str]:
    """Valid codes from a seeded generator, so the exhaustive checks are reproducible."""
    return bc.make_codes(count, choice=random.Random(seed).choice)


def test_make_codes_returns_ten_distinct_valid_codes():
    codes = bc.make_codes()
    assert len(codes) == 10 == bc.COUNT
    assert len(set(codes)) == 10
    for code in codes:
        assert len(code) == 16
        assert set(code) <= set(bc.ALPHABET)
        assert bc.normalize_code(code) == code


def test_alphabet_has_31_symbols_without_look_alikes():
    """DESIGN.md: an alphabet without look-alike characters (no 0/o, 1/l/i)."""
    assert len(set(bc.ALPHABET)) == len(bc.ALPHABET) == 31
    assert not set("01ilo") & set(bc.ALPHABET)
    assert bc.ALPHABET == bc.ALPHABET.lower()


def test_codes_carry_at_least_64_bits_of_entropy():
    """NIST SP 800-63B-4 §4.2.1.1: saved recovery codes have at least 64 bits."""
    bits = bc.RANDOM_SYMBOLS * math.log2(len(bc.ALPHABET))
    assert bits == pytest.approx(15 * math.log2(31))
    assert bits >= 64


def test_make_code_draws_fifteen_uniform_symbols_from_a_csprng():
    """ASVS 6.5.3: the default source is `secrets`; each random symbol is one draw of 31."""
    assert inspect.signature(bc.make_code).parameters["choice"].default is secrets.choice
    draws = []

    def choice(alphabet):
        draws.append(alphabet)
        return alphabet[len(draws) % len(alphabet)]

    code = bc.make_code(choice)
    assert draws == [bc.ALPHABET] * 15
    assert code[:15] == "".join(bc.ALPHABET[i % 31] for i in range(1, 16))


def test_make_codes_never_repeats_a_code():
    # A source that yields the same code twice, then another: the duplicate is drawn again.
    symbols = iter("2" * 30 + "3" * 15)
    assert bc.make_codes(2, choice=lambda alphabet: next(symbols)) == [
        "2" * 15 + bc._check_symbol("2" * 15), "3" * 15 + bc._check_symbol("3" * 15)]


def test_format_code_shows_four_groups_of_four():
    for code in bc.make_codes():
        shown = bc.format_code(code)
        assert FORMATTED.fullmatch(shown), shown
        assert shown.replace("-", "") == code


@pytest.mark.parametrize("variant", [
    str.upper,
    lambda shown: shown.replace("-", ""),
    lambda shown: shown.replace("-", " "),
    lambda shown: "  " + shown.upper().replace("-", " ") + "\n",
    lambda shown: shown[:2] + " " + shown[2:].title(),
    lambda shown: shown.replace("-", " - "),
])
def test_normalize_code_accepts_case_spaces_and_hyphens(variant):
    """DESIGN.md: accepted case-insensitively with or without spaces and hyphens."""
    code = seeded_codes(1)[0]
    assert bc.normalize_code(variant(bc.format_code(code))) == code


def test_every_single_symbol_substitution_is_detected():
    """A typo in one symbol is told apart from a wrong code by the check symbol (exhaustive)."""
    for code in seeded_codes(3):
        missed = [
            code[:i] + other + code[i + 1:]
            for i in range(len(code)) for other in bc.ALPHABET if other != code[i]
            if _accepted(code[:i] + other + code[i + 1:])
        ]
        assert missed == []


def test_every_adjacent_swap_is_detected():
    for code in seeded_codes(3):
        swaps = [code[:i] + code[i + 1] + code[i] + code[i + 2:]
                 for i in range(len(code) - 1) if code[i] != code[i + 1]]
        assert swaps, "the seeded code has neighbours to swap"
        assert [s for s in swaps if _accepted(s)] == []


def _accepted(text: str) -> bool:
    try:
        bc.normalize_code(text)
    except MalformedCode:
        return False
    return True


@pytest.mark.parametrize("typed", [
    "", "abcd", "123456",
    "0000-0000-0000-0000",                 # look-alikes outside the alphabet
    "llll-oooo-iiii-1111",
])
def test_normalize_code_refuses_wrong_shapes(typed):
    with pytest.raises(MalformedCode):
        bc.normalize_code(typed)


def test_normalize_code_refuses_a_missing_or_extra_symbol():
    code = seeded_codes(1)[0]
    for text in (code[:-1], code + "2", code[1:], "2" + code):
        with pytest.raises(MalformedCode):
            bc.normalize_code(text)


@pytest.mark.parametrize("typed", [None, 12345678, b"abcd", ["x"]])
def test_normalize_code_refuses_non_strings(typed):
    with pytest.raises(MalformedCode):
        bc.normalize_code(typed)


def test_normalize_code_refuses_very_long_text_before_looking_at_it():
    code = seeded_codes(1)[0]
    with pytest.raises(MalformedCode):
        bc.normalize_code(code + " " * 60)


def test_looks_like_backup_code_tells_codes_from_app_codes():
    assert bc.looks_like_backup_code(bc.format_code(seeded_codes(1)[0]))
    for app_code in ("123456", "123 456", "123-456", "", None):
        assert not bc.looks_like_backup_code(app_code)


# hashing -----------------------------------------------------------------------------------

def test_hash_code_is_keyed():
    """DESIGN.md: a keyed hash whose key is not in the database (a dump alone is useless)."""
    code, salt = seeded_codes(1)[0], bc.new_salt()
    assert bc.hash_code(code, salt, b"key one") != bc.hash_code(code, salt, b"key two")
    assert bc.hash_code(code, salt, b"key one") != hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def test_hash_code_is_salted():
    code = seeded_codes(1)[0]
    assert bc.hash_code(code, bc.new_salt(), b"k") != bc.hash_code(code, bc.new_salt(), b"k")


def test_hash_code_is_deterministic_and_tells_codes_apart():
    one, two = seeded_codes(2)
    salt = bc.new_salt()
    digest = bc.hash_code(one, salt, b"k")
    assert hmac.compare_digest(digest, bc.hash_code(one, salt, b"k"))
    assert digest != bc.hash_code(two, salt, b"k")
    assert re.fullmatch("[0-9a-f]{64}", digest)
    assert one not in digest


def test_new_salt_is_fresh_hex_that_fits_the_column():
    salts = {bc.new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(re.fullmatch("[0-9a-f]{32}", s) for s in salts)  # BackupCodeSet.salt: 32
