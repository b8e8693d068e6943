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


class KeptURLNode(URLNode):
    def render(self, context):
        if self.args or self.kwargs or self.asvar:
            return super().render(context)
        try:  # as Django's tag finds it
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = links.reverse(self.view_name.resolve(context), current_app=current_app)
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = django_url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)
