"""`{% url %}` for every template, its argument-less links kept per process (web/links.py).

Loaded as a template builtin (settings.TEMPLATES), after Django's own, so that `{% url %}` is
this one everywhere: the same syntax and the same output — with arguments, `as`, or a name that
does not reverse, it is Django's tag unchanged.
"""

from __future__ import annotations

from django import template
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url
from django.utils.html import conditional_escape

from ..web import links

register = template.Library()
_MISSING = object()


class KeptURLNode(URLNode):
    def render(self, context):
        if self.args or self.kwargs or self.asvar:
            return super().render(context)
        # As Django's tag finds it (without raising when a request has no current_app).
        request = getattr(context, "request", None)
        current_app = getattr(request, "current_app", _MISSING)
        if current_app is _MISSING:
            current_app = getattr(getattr(request, "resolver_match", None), "namespace", None)
        url = links.reverse(self.view_name.resolve(context), current_app=current_app)
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = django_url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)
