"""Serve config.wsgi:application with gunicorn, embedded: no gunicorn command line or config file.

gthread workers: each worker process runs a few threads, so a request waiting on Argon2 or the
database does not hold up the others, and nothing in the process keeps state between requests,
so processes can be added on one machine or many. Beside the web workers the arbiter keeps one
queue worker (`twostep worker`, worker.py) running as its child process: one per server, not one
per web worker, and restarted if it dies.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import ipaddress
import logging
import os
import platform
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

from . import logs, metrics

DEFAULT_WORKERS = 2
# A thread waiting at the hashing gate costs a stack, not CPU or a hash's memory: enough threads
# that a burst of new browsers waits for a slot (bounded by the gate's deadline) instead of
# being refused for want of a place in the queue.
DEFAULT_THREADS = 16
# Connections a worker holds at once, waiting for a thread or kept alive (gunicorn's
# `worker_connections`, 1000 by default). Every request, a kept-alive member's next one
# included, waits for a thread in one first-come queue of these connections; under a flood of new
# connections gunicorn's default let up to a thousand strangers queue ahead of it. A few per
# thread keep that queue short; further connections wait in the kernel's listen backlog until the
# worker takes them (docs/admission.md).
CONNECTIONS_PER_THREAD = 4


def hash_slots(workers: int) -> int:
    """Return the password hashes each of `workers` processes runs at once: the CPUs shared out."""
    try:
        cpus = len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, -(-cpus // max(1, workers)))


def hash_queue_length(threads: int, slots: int) -> int:
    """Return how many strangers' sign-ins may wait for a hash: every thread but the hashing ones
    and one kept free for a member (at least one)."""
    return max(1, threads - slots - 1)


def worker_connections(threads: int) -> int:
    """Return the connections a worker with `threads` threads accepts at once (gunicorn's worker_connections)."""
    return max(1, threads) * CONNECTIONS_PER_THREAD


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


# How long a worker's thread waits for a request on a connection it holds — the first on a new
# connection, the next on a kept-alive one — before it gives the connection to the worker's event
# loop, where waiting costs nothing. A redirect followed at once, or the page's stylesheet, comes
# within it from a nearby client, and is then served by the same thread with no handoff.
REQUEST_WAIT = 0.05
# While other connections wait for a thread, a thread serves at most this many of one
# connection's requests in a row before the connection takes its place at the back of the queue:
# a sign-in's requests, or a page with its stylesheet and script, go through in one stint, and a
# connection that keeps sending cannot keep a thread from the others.
REQUESTS_IN_A_ROW = 8


class ThreadWorker(gthread.ThreadWorker):
    """Gunicorn's gthread worker, with a thread serving a connection's requests while they come.

    In gthread a kept-alive connection goes back to the event loop after each answer, and its next
    request comes back to a pool thread through it: for each request the loop's thread wakes, and
    the two threads hand the connection and the interpreter lock to each other. A sign-in's
    requests on one connection cost about a tenth more CPU that way than in the thread that served
    the first (docs/performance.md, round 7). Here the thread waits up to REQUEST_WAIT for the
    next request and serves it itself, up to REQUESTS_IN_A_ROW requests in a row while other
    connections wait for a thread (round 8); a connection that stays quiet longer goes back to
    the loop, as before. A new connection waits as long for its first request (gthread holds a
    thread up to 5 s for it): a client that connects and sends nothing holds a thread for
    REQUEST_WAIT, then only a place among the worker's connections until the keep-alive timeout
    closes it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queued = 0  # connections handed to the thread pool that no thread has taken yet
        self._queued_lock = threading.Lock()

    def enqueue_req(self, conn):
        with self._queued_lock:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn):
        with self._queued_lock:
            self._queued -= 1
        if not conn.initialized and not conn.data_ready:
            if not readable(conn.sock, REQUEST_WAIT):
                return gthread._DEFER  # noqa: SLF001 — what gthread's own handle() answers then
            conn.data_ready = True
        keepalive, served = super().handle(conn), 1
        while keepalive is True and self.alive and self._next_request_here(conn, served):
            keepalive, served = super().handle(conn), served + 1
        return keepalive

    def _next_request_here(self, conn, served: int) -> bool:
        """Whether this thread serves the connection's next request, `served` having been served
        in a row: it has come or comes within REQUEST_WAIT, and fewer than REQUESTS_IN_A_ROW were
        served if another connection waits for a thread (then this one queues behind it)."""
        if self._queued and served >= REQUESTS_IN_A_ROW:
            return False
        return bool(conn.parser.unreader.buf.getvalue()) or readable(conn.sock, REQUEST_WAIT)


def readable(sock: socket.socket, timeout: float) -> bool:
    """Return whether `sock` has something to read (a request, or the peer closing) within `timeout` s."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))  # a signal meanwhile: poll resumes itself (PEP 475)


# Memory ----------------------------------------------------------------------------------------

# glibc gives each thread that allocates while others do an arena of its own, up to 8 per CPU; a
# worker of 16 threads kept ~5 MB more at rest after load for arenas that the GIL leaves nearly idle.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process and the workers it forks (MALLOC_ARENA_MAX).

    Returns whether it could (not on other C libraries, where nothing is changed).
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


# A password hash takes a block of 19 MiB (Argon2's memory), given back to the system when the
# hash ends (hashers.py) and taken fresh by the next: every 4 KiB page of it is zeroed and mapped
# by the kernel on first touch, 4,865 page faults a hash, which cost half as much CPU again as the
# hash itself (14 ms of system time beside 26 ms of Argon2, measured in one process). glibc's
# tunable below has malloc ask for transparent huge pages for such blocks (madvise): 2 MiB pages,
# a few faults a hash. glibc reads its tunables once, when a program starts, so `twostep serve`
# starts itself again with it, unless GLIBC_TUNABLES names it already (`=0` keeps it off).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
TRANSPARENT_HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def environment_with_huge_pages(environ: dict, thp_mode: Path = TRANSPARENT_HUGE_PAGES) -> dict | None:
    """Return `environ` with malloc's huge-page tunable added, or None if it needs no restart.

    None: not Linux with glibc, the tunable set already (by the operator, or by the first
    start), or the kernel's transparent huge pages not left to programs to ask for ("madvise":
    with "always" large blocks have them anyway; with "never" they cannot).
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if HUGE_PAGES_TUNABLE in tunables:
        return None
    try:
        if "[madvise]" not in thp_mode.read_text():
            return None
    except OSError:
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, f"{HUGE_PAGES_TUNABLE}=1")))}


def restart_with_huge_pages() -> None:
    """Replace this process (same PID, same command line) by one whose malloc uses huge pages
    for large blocks; return only if there is nothing to do or the restart failed."""
    environ = environment_with_huge_pages(dict(os.environ))
    if environ is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)  # noqa: S606 — this same program, again
    except OSError as error:
        logging.getLogger(__name__).warning("could not restart with huge pages for hashing: %s", error)


def share_with_workers() -> None:
    """Leave the arbiter's objects to the forked workers to share, not to copy.

    The arbiter has loaded Django and the application (settings, migrations, system checks), so
    every worker starts with those pages shared copy-on-write. A collection in a worker would
    write to the header of every object it walks, copying page after page of what it shares;
    frozen objects are never walked (the gc module's advice for a parent that forks). What the
    start-up freed goes back to the system first, instead of being inherited by every worker.
    """
    gc.collect()
    gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def worker_options(max_requests: int) -> dict:
    """Gunicorn's settings that bound a worker's memory over its life.

    After `max_requests` requests (0: never) a worker finishes those in hand and is replaced by a
    fresh fork of the arbiter, each after a random extra tenth so they are not replaced together:
    whatever a long-running worker accumulates (caches, fragmented heap) is bounded, not trusted.
    """
    if max_requests <= 0:
        return {"max_requests": 0}
    return {"max_requests": max_requests, "max_requests_jitter": max(1, max_requests // 10)}


class QueueWorker:
    """The `twostep worker` child process of the arbiter, started again if it dies."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._log = logging.getLogger("twostep.server")

    def start(self) -> None:
        threading.Thread(target=self._supervise, name="twostep-queue-worker", daemon=True).start()

    def _supervise(self) -> None:
        # Its own session: a Ctrl-C on the terminal reaches the arbiter, which stops it in order.
        command = [sys.executable, "-m", "twostep", "worker", "--parent", str(os.getpid())]
        pause = 1.0
        while not self._stopping.is_set():
            started = time.monotonic()
            self._process = subprocess.Popen(command, start_new_session=True)  # noqa: S603 — our own command
            code = self._process.wait()
            if self._stopping.is_set():
                return
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, 60.0)
            self._log.error("the queue worker stopped (exit status %s); starting it again in %.0f s",
                            code, pause)
            self._stopping.wait(pause)

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


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


def status_code(resp):
    """The status of gunicorn's response without its reason phrase ("302 Found" → "302")."""
    return resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status


class AccessLineLogger(glogging.Logger):
    """Gunicorn's access lines in its default format (Apache's combined), at less cost.

    Gunicorn builds, for every request, a dictionary of every request header, response header and
    WSGI variable, whatever the format asks for; the default format uses nine fields. This gives
    those nine alone, escaped the same way: the same line.
    """

    def atoms(self, resp, req, environ, request_time) -> dict:
        sent = getattr(resp, "sent", None)
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": status_code(resp),
            "b": "-" if sent is None else str(sent),
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
        }


class JsonGunicornLogger(glogging.Logger):
    """Gunicorn's logs as JSON lines: its own messages, and one object per request served."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(logs.JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.logconfig_dict or self.cfg.syslog):
            return
        headers = {name.lower(): value for name, value in (resp.headers or ())}
        fields = {
            "request_id": headers.get(logs.REQUEST_ID_HEADER.lower(), ""),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "status": int(status_code(resp)),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR", ""),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
        }
        try:
            self.access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)
        except Exception:  # noqa: BLE001 — gunicorn's own access() never lets a log line break a response
            self.exception("could not write the access log line")


def is_loopback(host: str) -> bool:
    """Return whether `host` (a name or address) is this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str, port: int, *, workers: int, threads: int, trusted_proxies: list[str],
          log_level: str, ready_line: str, queue_worker: bool = True, json_logs: bool = False,
          max_requests: int = 0) -> None:
    """Serve until SIGINT or SIGTERM (gunicorn stops the workers gracefully), then return.

    `ready_line` goes to standard output once the socket listens; access lines follow it there
    (one JSON object per line with `json_logs`). With `queue_worker`, a `twostep worker` process
    runs beside the web workers meanwhile. `max_requests`: see worker_options.
    """
    worker = QueueWorker() if queue_worker else None

    def when_ready(arbiter):
        if worker is not None:
            worker.start()
        print(ready_line, flush=True)

    def on_exit(arbiter):
        if worker is not None:
            worker.stop(timeout=20)

    def child_exit(arbiter, child):
        metrics.worker_exited(child.pid)

    options = {
        "bind": [address(host, port)],
        "worker_class": ThreadWorker,
        "workers": workers,
        "threads": threads,
        "worker_connections": worker_connections(threads),
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": log_level,
        "proc_name": "twostep",
        "when_ready": when_ready,
        "on_exit": on_exit,
        "child_exit": child_exit,
        # The longest request line gunicorn takes (its maximum; the default is 4094). The API's
        # longest valid query, every parameter at its limit in percent-encoded UTF-8, fits in it;
        # a longer line is refused with 414 before the application sees it (docs/api.md).
        "limit_request_line": 8190,
        "graceful_timeout": 20,
        # Gunicorn's control socket is one path per machine user; several `twostep serve`
        # processes on one machine would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        **worker_options(max_requests),
    }
    options["logger_class"] = JsonGunicornLogger if json_logs else AccessLineLogger
    if trusted_proxies:
        # Who may set X-Forwarded-Proto for gunicorn: the same proxies the app believes.
        options["forwarded_allow_ips"] = ",".join(trusted_proxies)
    limit_malloc_arenas()
    share_with_workers()
    try:
        Server(options).run()
    except SystemExit as stop:
        # Gunicorn leaves by sys.exit: 0 after a clean stop, non-zero when workers failed to boot.
        if stop.code not in (0, None):
            sys.exit(stop.code)
