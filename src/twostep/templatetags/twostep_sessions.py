"""The security page's "Your sessions" and "Remembered browsers" lists, read from the services."""

from __future__ import annotations

from django import template

from ..services import sessions, trusted_browsers

register = template.Library()


@register.simple_tag(takes_context=True)
def your_sessions(context) -> dict:
    """Return the signed-in user's live sessions and remembered browsers for the page."""
    request = context["request"]
    user = request.user
    live = sessions.active_sessions(user, request.session.session_key)
    browsers = [
        {"id": b.pk, "name": sessions.browser_name(b.user_agent), "ip": b.ip, "created_at": b.created_at,
         "expires_at": b.expires_at, "last_used_at": b.last_used_at}
        for b in trusted_browsers.browsers(user)
    ]
    return {
        "sessions": live,
        "others": any(not s.is_current for s in live),
        "browsers": browsers,
        "remember_on": trusted_browsers.days_allowed(user) > 0,
    }
