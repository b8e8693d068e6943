"""Template filters for security events: the one description every page shows."""

from django import template

from ..services import activity

register = template.Library()


@register.filter
def describe(event) -> str:
    """Say what a security event was, as the activity pages and both APIs say it."""
    return activity.describe(event)
