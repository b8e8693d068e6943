"""Template filters for security events: the one description every page shows."""

from django import template

from ..services import activity, user_agents

register = template.Library()


@register.filter
def describe(event) -> str:
    """Say what a security event was, as the activity pages and both APIs say it."""
    return activity.describe(event)


@register.filter
def browser(user_agent) -> str:
    """Name the browser of a User-Agent header as a person would: "Chrome on Android"."""
    return user_agents.browser_name(user_agent)
