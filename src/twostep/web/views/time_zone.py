"""The time-zone page: which zone the pages show times in, and choosing another."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from ...services import time_zones
from ...services.errors import InvalidInput
from .common import next_param

COOKIE_AGE = 365 * 24 * 3600


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        help_text=gettext_lazy("Times on these pages and in the activity lists are shown in this zone."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zones.choices()]


@require_http_methods(["GET", "HEAD", "POST"])
def time_zone(request):
    """Show the zone in use; save a chosen one for the user (and in the browser's cookie)."""
    target = next_param(request) or "web:security"
    current = request.time_zone_name or "UTC"
    if request.method != "POST":
        form = TimeZoneForm(initial={"time_zone": current})
        return render(request, "twostep/security/time_zone.html", {"form": form, "current": current,
                                                                   "next": next_param(request)})
    form = TimeZoneForm(request.POST)
    if not form.is_valid():
        return render(request, "twostep/security/time_zone.html", {"form": form, "current": current,
                                                                   "next": next_param(request)}, status=400)
    try:
        name = time_zones.check(form.cleaned_data["time_zone"])
        if request.user.is_authenticated:
            time_zones.remember(request.user, name)
    except InvalidInput as error:  # the list and the server's database disagree: say so, no 500
        form.add_error("time_zone", error.message)
        return render(request, "twostep/security/time_zone.html", {"form": form, "current": current},
                      status=400)
    messages.success(request, _("Times are now shown in %(zone)s.") % {"zone": name})
    response = redirect(target)
    response.set_cookie(time_zones.COOKIE, name, max_age=COOKIE_AGE, samesite="Lax",
                        secure=request.is_secure(), httponly=False)  # the script reads and sets it too
    return response
