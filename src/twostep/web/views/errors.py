"""Friendly error pages. 403, 404 and 500 use Django's handlers with our templates."""

from django.shortcuts import render


def csrf_failure(request, reason=""):
    """Explain a failed CSRF check in words a person can act on (settings.CSRF_FAILURE_VIEW)."""
    return render(request, "twostep/errors/csrf.html", status=403)
