"""The Django admin is reached only through twostep's own two-step sign-in."""

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode


def protect_admin_site(site) -> None:
    """Send the admin's login and logout to ours (allauth-2fa #40: the admin login skipped 2FA)."""

    def login(request, extra_context=None):
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        return redirect(f"{reverse('web:login')}?{urlencode({REDIRECT_FIELD_NAME: target})}")

    site.login = login
