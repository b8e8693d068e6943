from django.http import HttpResponseForbidden


def csrf_failure(request, reason=""):
    return HttpResponseForbidden("CSRF check failed. Reload the page and try again.")
