"""Django's `static` library with each file's address worked out once per process.

Registered under the label `static` (settings.TEMPLATES, "libraries"), so `{% load static %}`
loads this: Django's tags and filters, the same syntax and the same output. `{% static %}` asks
the static files storage for the address every time (about 20 µs: the base page names four
files); the answer for a path stays the same until the static settings change, so it is kept
until then.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags import static

register = template.Library()
register.tags.update(static.register.tags)
register.filters.update(static.register.filters)

STATIC_SETTINGS = {"STATIC_URL", "STATIC_ROOT", "STORAGES", "STATICFILES_DIRS", "INSTALLED_APPS"}


@lru_cache(maxsize=256)  # the paths the templates name: a handful
def address(path: str) -> str:
    """Return the address of the static file `path`, as Django's `{% static %}` gives it."""
    return static.StaticNode.handle_simple(path)


@receiver(setting_changed)
def _forget(*, setting, **kwargs):
    if setting in STATIC_SETTINGS:
        address.cache_clear()


class KeptStaticNode(static.StaticNode):
    def url(self, context):
        path = self.path.resolve(context)
        # A failure, or a path that is not a string, goes to Django each time.
        return address(path) if isinstance(path, str) else self.handle_simple(path)


@register.tag("static")
def do_static(parser, token):
    node = static.StaticNode.handle_token(parser, token)
    return KeptStaticNode(node.varname, node.path)
