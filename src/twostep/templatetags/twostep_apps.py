"""The security page's "Apps with access" list, and the way back to an application's sign-in."""

from __future__ import annotations

from django import template

from .. import signin_state
from ..services import oidc

register = template.Library()


@register.simple_tag(takes_context=True)
def apps_with_access(context) -> dict:
    request = context["request"]
    return {"apps": oidc.apps_with_access(request.user), "going_back": signin_state.pending_return(request)}
