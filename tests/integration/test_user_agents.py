"""Browsers named for a person ("Chrome on Android"), in both languages; the raw header kept."""

from __future__ import annotations

import pytest
from django.utils import translation

from twostep.services import user_agents
from twostep.services.audit import Origin

CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Mobile Safari/537.36")


@pytest.mark.parametrize(("agent", "name"), [
    (CHROME_ANDROID, "Chrome on Android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome on iOS"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "YaBrowser/24.6.0.0 Safari/537.36", "Yandex Browser on Windows"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36", "Chrome on ChromeOS"),
    ("curl/8.5.0", "curl"),
    ("Mozilla/5.0 (Linux; Android 14)", "A browser on Android"),
    ("", "Unknown browser"),
    (None, "Unknown browser"),
])
def test_browser_name_reads_the_user_agent(agent, name):
    assert user_agents.browser_name(agent) == name


def test_browser_name_speaks_russian():
    with translation.override("ru"):
        assert user_agents.browser_name(CHROME_ANDROID) == "Chrome на Android"
        assert user_agents.browser_name("") == "Неизвестный браузер"


def test_command_line_actions_are_named_in_the_readers_language():
    stored = Origin.command_line().user_agent
    assert user_agents.browser_name(stored) == "the twostep command line"
    with translation.override("ru"):
        assert user_agents.browser_name(stored) == "командная строка twostep"
