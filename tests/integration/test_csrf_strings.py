"""CSRF secrets and masks: Django's protection, its random strings drawn in one read each."""

from __future__ import annotations

import random
import re
from collections import Counter

from django.http import HttpRequest
from django.middleware import csrf
from django.test import Client

from twostep import csrf_strings

from ..conftest import PASSWORD

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _reads_of_the_random_source(monkeypatch) -> list[int]:
    """Record each read of the system's random source (what secrets and SystemRandom call)."""
    reads, real = [], random._urandom

    def counted(size):
        reads.append(size)
        return real(size)

    monkeypatch.setattr(random, "_urandom", counted)
    return reads


def test_a_new_browsers_token_costs_two_reads_not_one_a_character(monkeypatch):
    reads = _reads_of_the_random_source(monkeypatch)
    token = csrf.get_token(HttpRequest())  # a new secret, then its mask
    assert len(reads) == 2, f"{len(reads)} reads of the random source for one token"
    assert len(token) == csrf.CSRF_TOKEN_LENGTH
    assert set(token) <= set(csrf.CSRF_ALLOWED_CHARS)


def test_djangos_csrf_code_makes_its_strings_through_the_replaced_function():
    # The seam this relies on: should Django stop calling it, the test above fails too.
    assert csrf._get_new_csrf_string is csrf_strings.new_csrf_string
    for maker in (csrf._mask_cipher_secret, csrf._add_new_csrf_cookie):
        assert "_get_new_csrf_string" in maker.__code__.co_names, maker.__name__


def test_a_mask_hides_the_secret_and_django_reads_it_back():
    secret = csrf_strings.new_csrf_string()
    tokens = {csrf._mask_cipher_secret(secret) for _ in range(50)}
    assert len(tokens) == 50  # every page's token differs (BREACH)
    assert {csrf._unmask_cipher_token(token) for token in tokens} == {secret}


def test_every_character_is_equally_likely():
    drawn = Counter("".join(csrf_strings.new_csrf_string() for _ in range(4000)))
    expected = 4000 * csrf_strings.LENGTH / len(csrf_strings.ALPHABET)  # 2065 each
    spread = 6 * (expected * (1 - 1 / len(csrf_strings.ALPHABET))) ** 0.5  # six standard deviations: 271
    assert set(drawn) == set(csrf_strings.ALPHABET)
    # Bytes taken modulo 62 without drawing again would give the first 8 characters ~2500 each.
    assert all(abs(count - expected) < spread for count in drawn.values()), drawn.most_common(10)


def test_bytes_that_would_favour_some_characters_are_drawn_again():
    reads = iter([bytes(range(248, 256)) * 6, bytes(range(48)), bytes(range(48))])
    value = csrf_strings.new_csrf_string(token_bytes=lambda size: next(reads))
    assert value == csrf_strings.ALPHABET[:32]  # the first read gave nothing usable


def test_sign_in_form_takes_its_pages_token_and_refuses_another(member):
    browser, stranger = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    token = TOKEN.search(browser.get("/login").content.decode()).group(1)
    strangers = TOKEN.search(stranger.get("/login").content.decode()).group(1)

    refused = browser.post("/login", {"csrfmiddlewaretoken": strangers, "login": "member", "password": PASSWORD})
    assert refused.status_code == 403
    signed_in = browser.post("/login", {"csrfmiddlewaretoken": token, "login": "member", "password": PASSWORD})
    assert signed_in.status_code == 302
