"""Serve config.wsgi:application with gunicorn, embedded: no gunicorn command line or config file.

gthread workers: each worker process runs a few threads, so a request waiting on Argon2 or the
database does not hold up the others, and nothing in the process keeps state between requests
(DESIGN.md §1), so processes can be added on one machine or many.
"""

from __future__ import annotations

import errno
import socket
import sys

from gunicorn.app.base import BaseApplication

DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4


def address(host: str, port: int) -> str:
    """Return host:port, with an IPv6 host in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def check_free(host: str, port: int) -> None:
    """Raise OSError with a readable message when host:port cannot be listened on.

    Gunicorn would retry for five seconds and print a page of log lines; this says it once.
    """
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OSError(f"cannot listen on {address(host, port)}: {error.strerror}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # The same option gunicorn sets, so a port in TIME_WAIT counts as free, as it is for gunicorn.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            reason = "the address is in use" if error.errno == errno.EADDRINUSE else error.strerror
            raise OSError(f"cannot listen on {address(host, port)}: {reason}") from None


class Server(BaseApplication):
    """Gunicorn with its settings given here, serving config.wsgi:application."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from config.wsgi import application

        return application


def serve(host: str, port: int, *, workers: int, threads: int, trusted_proxies: list[str],
          log_level: str, ready_line: str) -> None:
    """Serve until SIGINT or SIGTERM (gunicorn stops the workers gracefully), then return.

    `ready_line` goes to standard output once the socket listens; access lines follow it there.
    """

    def when_ready(arbiter):
        print(ready_line, flush=True)

    options = {
        "bind": [address(host, port)],
        "worker_class": "gthread",
        "workers": workers,
        "threads": threads,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": log_level,
        "proc_name": "twostep",
        "when_ready": when_ready,
        "graceful_timeout": 20,
        # Gunicorn's control socket is one path per machine user; several `twostep serve`
        # processes on one machine would fight over it, and nothing here uses it.
        "control_socket_disable": True,
    }
    if trusted_proxies:
        # Who may set X-Forwarded-Proto for gunicorn: the same proxies the app believes.
        options["forwarded_allow_ips"] = ",".join(trusted_proxies)
    try:
        Server(options).run()
    except SystemExit as stop:
        # Gunicorn leaves by sys.exit: 0 after a clean stop, non-zero when workers failed to boot.
        if stop.code not in (0, None):
            sys.exit(stop.code)
