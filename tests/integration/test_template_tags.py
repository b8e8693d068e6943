"""Django's template tags with what they look up kept (twostep/templatetags): the same output
as Django's own tags, page by page and form by form, and still following what changes."""

from __future__ import annotations

import copy
import re

import pytest
from django.conf import settings
from django.template import TemplateDoesNotExist, engines
from django.template.backends.django import DjangoTemplates
from django.test import override_settings
from django.utils import translation

from twostep.templatetags.twostep_i18n import LiteralTranslateNode
from twostep.templatetags.twostep_loader_tags import KeptExtendsNode, KeptIncludeNode
from twostep.templatetags.twostep_static import KeptStaticNode

from ..conftest import PASSWORD

CSRF = re.compile(r'value="[A-Za-z0-9]{64}"')


def stock_options() -> dict:
    """The project's template settings with Django's own tags only."""
    options = copy.deepcopy(settings.TEMPLATES[0])
    options["OPTIONS"].pop("builtins")
    options["OPTIONS"].pop("libraries")
    return options


def engine_pair(loaders: list | None = None) -> tuple:
    """(Django's tags, twostep's), otherwise the same engine."""
    pair = []
    for name, kept in (("stock", False), ("kept", True)):
        options = copy.deepcopy(settings.TEMPLATES[0])
        options.pop("BACKEND")
        options["NAME"] = name
        if not kept:
            del options["OPTIONS"]["builtins"], options["OPTIONS"]["libraries"]
        if loaders is not None:
            options["APP_DIRS"] = False
            options["OPTIONS"]["loaders"] = loaders
        pair.append(DjangoTemplates(options))
    return tuple(pair)


def both(source: str, context: dict | None = None, pair=None) -> tuple[str, str]:
    stock, kept = pair or engine_pair()
    return tuple(engine.from_string(source).render(dict(context or {})) for engine in (stock, kept))


def test_the_project_engine_uses_the_kept_nodes():
    template = engines["django"].from_string(
        "{% extends 'twostep/bare.html' %}{% load i18n static %}"
        "{% block content %}{% translate 'Sign in' %}{% static 'twostep/twostep.css' %}"
        "{% include 'twostep/signin/busy.html' %}{% endblock %}").template
    kinds = {type(node) for node in template.nodelist.get_nodes_by_type(object)}
    assert {KeptExtendsNode, LiteralTranslateNode, KeptStaticNode, KeptIncludeNode} <= kinds


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("source", [
    "{% translate 'Sign in' %}|{% trans \"Continue\" %}",
    "{% translate 'Lost your phone and your backup codes? Ask your account admin to let you back in.' %}",
    "{% translate '100% sure & <b>bold</b>' %}",     # percent signs and markup: Django's handling
    "{% translate 'Sign in'|upper %}",                # a filter: Django's node
    "{% translate 'Sign in' as label %}[{{ label }}]",
    "{% translate 'May' context 'month name' %}",
    "{% translate 'Sign in' noop %}",
    "{% translate word %}",                            # a variable: Django's node
    "{% autoescape off %}{% translate 'a < b' %}{% endautoescape %}",
])
def test_translate_renders_as_djangos(language, source):
    with translation.override(language):
        stock, kept = both("{% load i18n %}" + source, {"word": "Sign in"})
    assert kept == stock


def test_a_literal_is_translated_in_the_active_language():
    template = engines["django"].from_string("{% load i18n %}{% translate 'Sign in' %}")
    with translation.override("ru"):
        russian = template.render({})
    with translation.override("en"):
        english = template.render({})
    assert english == "Sign in" and russian != english and russian.strip()


def test_static_renders_as_djangos_and_follows_its_settings():
    source = "{% load static %}{% static 'twostep/twostep.css' %}|{% static 'x y.js' as there %}{{ there }}|{% static name %}"
    stock, kept = both(source, {"name": "twostep/clock.js"})
    assert kept == stock == "/static/twostep/twostep.css|/static/x%20y.js|/static/twostep/clock.js"
    with override_settings(STATIC_URL="/assets/"):
        stock, kept = both(source, {"name": "twostep/clock.js"})
        assert kept == stock and kept.startswith("/assets/twostep/twostep.css")
    assert both(source, {"name": "a.js"})[1].startswith("/static/")


TEMPLATES = {
    "base.html": "<title>{% block title %}base{% endblock %}</title>{% block body %}[{% block inner %}in{% endblock %}]{% endblock %}",
    "middle.html": "{% extends 'base.html' %}{% block title %}middle+{{ block.super }}{% endblock %}",
    "page.html": ("{% extends 'middle.html' %}{% block inner %}{{ block.super }}:"
                  "{% for who in people %}{% include 'card.html' with tag='li' %}{% endfor %}"
                  "{% include 'card.html' only %}{% include './dir/rel.html' %}{% include chosen %}{% endblock %}"),
    "card.html": "<{{ tag|default:'p' }}>{{ who|default:'nobody' }}</{{ tag|default:'p' }}>",
    "dir/rel.html": "rel:{{ people|length }}",
    "other.html": "other",
    "missing.html": "{% include 'nowhere.html' %}",
    "by_variable.html": "{% extends parent %}{% block title %}child{% endblock %}",
}
CACHED = [("django.template.loaders.cached.Loader", [("django.template.loaders.locmem.Loader", TEMPLATES)])]


def render_both(name: str, context: dict, pair) -> tuple[str, str]:
    return tuple(engine.get_template(name).render(dict(context)) for engine in pair)


def test_extends_and_include_render_as_djangos():
    pair = engine_pair(CACHED)
    context = {"people": ["ann", "bob"], "chosen": "other.html", "who": "top"}
    for _ in range(2):  # the second render uses what the first kept
        stock, kept = render_both("page.html", context, pair)
        assert kept == stock
    assert kept == "<title>middle+base</title>[in:<li>ann</li><li>bob</li><p>nobody</p>rel:2other]"  # `only`: no "top"
    # A variable's template is looked up on every render, as Django does.
    assert render_both("page.html", {**context, "chosen": "card.html"}, pair)[1].endswith("<p>top</p>]")
    parent = pair[1].get_template("base.html")
    stock, kept = render_both("by_variable.html", {"parent": "middle.html"}, pair)
    assert kept == stock == "<title>child</title>[in]"
    assert pair[1].get_template("by_variable.html").render({"parent": parent}) == "<title>child</title>[in]"
    for engine in pair:
        with pytest.raises(TemplateDoesNotExist):
            engine.get_template("missing.html").render({})


def test_without_the_cached_loader_an_edited_include_is_seen():
    files = {"outer.html": "{% include 'inner.html' %}", "inner.html": "first"}
    outers = [engine.get_template("outer.html")
              for engine in engine_pair([("django.template.loaders.locmem.Loader", files)])]
    assert [outer.render({}) for outer in outers] == ["first", "first"]
    files["inner.html"] = "second"  # as a developer edits a file while the page is held
    assert [outer.render({}) for outer in outers] == ["second", "second"]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_sign_in_pages_are_the_same_with_djangos_tags(client, enrolled, language):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    pages = {}
    for options in (settings.TEMPLATES, [stock_options()]):
        with override_settings(TEMPLATES=options):
            login = client.get("/login?next=/security")
            wrong = client.post("/login", {"login": enrolled.user.login, "password": "wrong"})
            client.post("/login", {"login": enrolled.user.login, "password": PASSWORD})
            code = client.get("/login/code")
            refused = client.post("/login/code", {"code": "abc"})
            backup = client.get("/login/backup-code")
            client.post("/logout")
            pages[len(pages)] = [CSRF.sub('value="T"', page.content.decode())
                                 for page in (login, wrong, code, refused, backup)]
    assert pages[0] == pages[1]
    login, wrong, code, refused, _ = pages[0]
    assert ("Sign in" in login) == (language == "en") and 'name="next" value="/security"' in login
    assert 'id="page-error"' in wrong and "error-summary" not in wrong + code
    assert "error-summary" in refused
