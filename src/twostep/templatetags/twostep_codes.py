"""How many backup codes are left, in words an admin's list can flag."""

from __future__ import annotations

from django import template

from ..services.factors import backup_codes

register = template.Library()


@register.filter
def codes_state(left) -> str:
    """Return "none", "low" or "enough" for a count of unused backup codes."""
    if not left:
        return "none"
    return "low" if backup_codes.is_low(left) else "enough"
