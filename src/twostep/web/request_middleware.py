"""Middleware for every response, pages and API alike: request ids and HEAD without a body.

The answer while the database is away is not middleware: an error raised in any middleware or
view reaches Django's 500 handler, `views.errors.server_error`, which turns a lost database into
503 (JSON on the API).
"""

from __future__ import annotations

from django.conf import settings

from .. import logs


class RequestIdMiddleware:
    """Give each request an id: in every log line written while serving it, and in the response.

    A trusted proxy's `X-Request-ID` is kept (so one id follows the request through the proxy's
    log and ours); anyone else's is replaced, as with X-Forwarded-For.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = None
        if request.META.get("REMOTE_ADDR") in settings.TWOSTEP_TRUSTED_PROXIES:
            offered = request.META.get("HTTP_X_REQUEST_ID")
        request.request_id = logs.new_request_id(offered)
        tokens = logs.bind_request(request.request_id, request.path)
        try:
            response = self.get_response(request)
        finally:
            logs.unbind_request(tokens)
        response[logs.REQUEST_ID_HEADER] = request.request_id
        return response


class HeadWithoutBodyMiddleware:
    """Answer HEAD with the headers GET would send and no body (RFC 9110 §9.3.2).

    Django's views render the body for HEAD as for GET, and gunicorn then drops it with a
    warning per request ("body bytes on a no-body response"). Emptying it here, outermost, keeps
    the Content-Length of the GET answer and leaves gunicorn nothing to drop.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.META.get("REQUEST_METHOD") != "HEAD":
            return response
        if response.streaming:
            # A file or generator: not read at all (whitenoise answers HEAD for static files itself).
            response.streaming_content = []
        else:
            if not response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response

