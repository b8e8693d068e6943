"""`twostep serve`'s access lines (server.AccessLineLogger): gunicorn's own default line, cheaper."""

from __future__ import annotations

import base64
import datetime
from types import SimpleNamespace

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from twostep.server import AccessLineLogger


def line(logger_class, resp, req, environ) -> str:
    config = Config()
    config.set("accesslog", "-")
    logger = logger_class(config)
    logger.now = lambda: "[02/Dec/2026:19:02:37 +0000]"
    atoms = glogging.SafeAtoms(logger.atoms(resp, req, environ, datetime.timedelta(milliseconds=12)))
    return config.access_log_format % atoms


@pytest.mark.parametrize("sent, more", [
    (5120, {"HTTP_REFERER": 'https://example.org/?q="x"', "HTTP_USER_AGENT": 'Mozilla/5.0 "quoted"'}),
    (None, {}),
    (0, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"ana:secret").decode()}),
])
def test_the_same_line_as_gunicorns_default(sent, more):
    resp = SimpleNamespace(status="302 Found", sent=sent, headers=[("Location", "/login/code")])
    req = SimpleNamespace(headers=[("HOST", "example.org"), ("COOKIE", "a=b")])
    environ = {"REMOTE_ADDR": "192.0.2.7", "REQUEST_METHOD": "POST", "RAW_URI": "/login?next=%2Fsecurity",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/login", "QUERY_STRING": "next=%2Fsecurity", **more}
    ours = line(AccessLineLogger, resp, req, environ)
    assert ours == line(glogging.Logger, resp, req, environ)
    assert ours.startswith('192.0.2.7 - ') and '"POST /login?next=%2Fsecurity HTTP/1.1" 302 ' in ours
