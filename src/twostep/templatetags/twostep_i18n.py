"""Django's `i18n` library with `{% translate "a literal" %}` rendered in one step.

Registered under the label `i18n` (settings.TEMPLATES, "libraries"), so `{% load i18n %}` loads
this: every tag and filter of Django's library, the same syntax and the same output. A
`{% translate %}` of a plain string literal — no filter, `as`, `context` or `noop`, as nearly
all of the pages' 400 are — looks its text up directly: Django's node resolves the literal
through a lazy translation proxy and its filter expression on every render, a sixth of a
sign-in page's rendering. Any other form is Django's node unchanged.
"""

from __future__ import annotations

from django import template
from django.template.base import Variable
from django.templatetags import i18n
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = template.Library()
register.tags.update(i18n.register.tags)
register.filters.update(i18n.register.filters)


class LiteralTranslateNode(i18n.TranslateNode):
    """`{% translate "text" %}`: the translation of a literal, as Django's node renders it.

    Django marks a template's literal safe, doubles its percent signs before the lookup (the
    catalog's msgids have them doubled) and halves them after; a safe msgid's translation is
    safe, so autoescaping leaves it alone.
    """

    def __init__(self, node: i18n.TranslateNode, literal: SafeString):
        super().__init__(node.filter_expression, node.noop, node.asvar, node.message_context)
        self.msgid = mark_safe(literal.replace("%", "%%"))  # noqa: S308 — the template's own text

    def render(self, context):
        return mark_safe(gettext(self.msgid).replace("%%", "%"))  # noqa: S308 — as Django's node


def _literal(node: i18n.TranslateNode) -> SafeString | None:
    """The node's text if it is a plain literal with nothing else to do, else None."""
    if node.noop or node.asvar or node.message_context or node.filter_expression.filters:
        return None
    var = node.filter_expression.var
    # A literal is kept safe by the parser; a variable has no literal.
    return var.literal if isinstance(var, Variable) and isinstance(var.literal, SafeString) else None


@register.tag("translate")
@register.tag("trans")
def do_translate(parser, token):
    node = i18n.do_translate(parser, token)
    literal = _literal(node)
    return node if literal is None else LiteralTranslateNode(node, literal)
