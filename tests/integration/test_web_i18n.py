"""The Russian translation: complete, and what a Russian-speaking browser gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.utils.translation import trans_real

import twostep
from twostep.messages import compile_catalogues

from ..conftest import PASSWORD

RU_PO = Path(twostep.__file__).resolve().parent / "locale" / "ru" / "LC_MESSAGES" / "django.po"
RUSSIAN_PLURAL_FORMS = 3  # один код, два кода, пять кодов


@pytest.fixture
def compiled():
    """Make sure the .mo is current, and make Django read it again if it was not."""
    if compile_catalogues():
        trans_real._translations.clear()
        trans_real._default = None


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def test_russian_catalogue_translates_every_message():
    with RU_PO.open("rb") as handle:
        catalogue = read_po(handle, locale="ru")
    assert catalogue.num_plurals == RUSSIAN_PLURAL_FORMS
    untranslated = [m.id for m in catalogue if m.id and not all(s.strip() for s in _strings(m))]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    wrong_forms = [m.id for m in catalogue if m.pluralizable and len(_strings(m)) != RUSSIAN_PLURAL_FORMS]
    assert untranslated == [], "run makemessages and translate these"
    assert fuzzy == [], "check and un-fuzzy these"
    assert wrong_forms == []
    assert not catalogue.fuzzy


def test_russian_catalogue_keeps_every_placeholder():
    import re

    placeholder = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
    with RU_PO.open("rb") as handle:
        catalogue = read_po(handle, locale="ru")
    for message in catalogue:
        if not message.id:
            continue
        source = message.id[-1] if isinstance(message.id, tuple | list) else message.id
        wanted = set(placeholder.findall(source))
        for text in _strings(message):
            assert set(placeholder.findall(text)) == wanted, message.id


def test_page_is_in_russian_for_a_russian_browser(client, db, compiled):
    response = client.get("/login", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    page = response.content.decode()
    assert response["Content-Language"] == "ru"
    assert '<html lang="ru">' in page
    assert "Вход" in page or "Войти" in page
    assert "Пароль" in page and "Password" not in page


def test_russian_sign_in_with_backup_code_counts_codes_in_russian(client, enrolled, compiled):
    client.post("/login", {"login": "member", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="ru")
    client.post("/login/backup-code", {"code": enrolled.codes[0]}, HTTP_ACCEPT_LANGUAGE="ru")
    page = client.get("/security/recover", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "У вас осталось 9 резервных кодов." in page
    assert "Потеряли телефон?" in page


def test_russian_wrong_password_message_is_in_russian(client, member, compiled):
    response = client.post("/login", {"login": "member", "password": "nope"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert "Неверный логин или пароль." in response.content.decode()
