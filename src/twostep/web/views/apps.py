"""Taking an application's access back ("Apps with access" on the security page)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ...http import origin
from ...services import oidc
from ...services.errors import NotFound
from .common import signed_in_required


@require_POST
@signed_in_required
def revoke(request, client_id: str):
    try:
        app = oidc.revoke_app(request.user, client_id, origin(request))
    except NotFound:
        raise Http404() from None
    messages.success(request, _("%(app)s no longer has access: it is signed out and will ask you again.")
                     % {"app": app.name})
    return redirect("web:security")
