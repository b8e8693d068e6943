"""WSGI: each request runs in a turn of its process (core/turns.py), its body read before.

Outside Django, so that the turn covers the whole request — middleware, view and the answer's
rendering — but not the network: a request's body is read into memory before the request waits
for its turn, so a client sending slowly holds a thread, never a turn. Bodies larger than
DATA_UPLOAD_MAX_MEMORY_SIZE are left to Django, which refuses them before reading them. The
request's database connections go with the turn (turn_connections.py). The answer is written to
the client after the turn is given back. The liveness check takes no turn:
it touches no database and must answer while every turn waits for one that is away.
"""

from __future__ import annotations

import io
from functools import cached_property

from django.conf import settings

from . import turn_connections
from .early_refusal import path_info
from .services import admission


def read_body(environ: dict) -> None:
    """Replace `wsgi.input` by the body read into memory, if it has a length Django would read."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return  # Django answers a malformed length itself
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return
    environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))


class RequestTurns:
    """WSGI middleware: run the application in a turn of this process's turns."""

    def __init__(self, application):
        self.application = application

    @cached_property
    def liveness(self) -> str:
        return path_info("web:healthz")

    def __call__(self, environ, start_response):
        process_turns = admission.turns()
        if process_turns is None or environ.get("PATH_INFO") == self.liveness:
            return self.application(environ, start_response)
        read_body(environ)
        with process_turns.turn(), turn_connections.borrowed():
            return self.application(environ, start_response)


def wrap(application):
    """Return `application` run in turns."""
    return RequestTurns(application)
