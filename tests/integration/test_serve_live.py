"""A real `twostep serve` (gunicorn, two workers) seen from outside: HEAD, JSON logs, metrics added up
over workers, a hostile multipart body, and a PostgreSQL that goes away and comes back."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import dj_database_url
import psycopg
import pytest

from twostep import server

TWOSTEP = str(Path(sys.executable).with_name("twostep"))
PASSWORD = "correct horse battery staple"
METRICS_TOKEN = "scrape-" + secrets.token_hex(8)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """`twostep serve` on a fresh data dir; stdout and stderr kept apart in files."""

    def __init__(self, data: Path, *, workers: int = 2, threads: int | None = None, **settings: str):
        self.data, self.port = data, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
        self.env.update({"TWOSTEP_DATA_DIR": str(data), **{f"TWOSTEP_{k}": v for k, v in settings.items()}})
        data.mkdir(parents=True, exist_ok=True)
        self.out, self.err = open(data / "out.log", "w"), open(data / "err.log", "w")  # noqa: SIM115
        command = [TWOSTEP, "serve", "--port", str(self.port), "--workers", str(workers)]
        command += ["--threads", str(threads)] if threads else []
        self.process = subprocess.Popen(command, env=self.env, stdout=self.out, stderr=self.err, cwd=data)
        deadline = time.monotonic() + 60
        while not self.answers():
            assert self.process.poll() is None, (data / "err.log").read_text()
            assert time.monotonic() < deadline, "twostep serve did not answer within 60 s"
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def cli(self, *args: str, stdin: str | None = None) -> None:
        done = subprocess.run([TWOSTEP, *args], input=stdin, env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """Return (status, headers, body) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def logs(self) -> tuple[str, str]:
        for file in (self.out, self.err):
            if not file.closed:
                file.flush()
        return (self.data / "out.log").read_text(), (self.data / "err.log").read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.out.close()
        self.err.close()


class ApiSession:
    """Cookies and the CSRF token, as a browser app keeps them."""

    def __init__(self, base: str):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def page(self, path: str):
        try:
            with self.opener.open(f"{self.base}{path}", timeout=15) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def call(self, method: str, path: str, body: dict | None = None):
        if not any(c.name == "csrftoken" for c in self.jar):
            self.opener.open(f"{self.base}/api/v1/auth/session", timeout=15).read()
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}/api/v1{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json", "X-CSRFToken": token})
        try:
            with self.opener.open(request, timeout=15) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if os.environ.get("TWOSTEP_DATABASE_URL"):
        pytest.skip("the SQLite run covers one server; the PostgreSQL outage test below uses its own")
    server = Served(tmp_path_factory.mktemp("serve") / "data", METRICS="true", METRICS_TOKEN=METRICS_TOKEN,
                    LOG_FORMAT="json", LOG_LEVEL="INFO")
    server.cli("account", "create", "Acme", "--admin", "alice", "--email", "alice@acme.example",
               "--password-stdin", stdin=PASSWORD + "\n")
    yield server
    server.stop()


HEAD_PATHS = ["/login", "/healthz", "/readyz", "/nowhere", "/security", "/api/v1/openapi.json",
              "/api/v1/auth/session", "/api/v1/auth/login", "/api/v1/nowhere", "/static/twostep/twostep.css"]


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile


def _environment(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_serve_runs_with_huge_pages_for_hashing_where_the_kernel_leaves_them_to_programs(served):
    """Started again in place (same PID) with glibc's huge-page tunable, its workers with it.

    Whether this machine calls for it is server.environment_with_huge_pages's to say (its unit
    tests cover each case); here, that the running processes got what it says.
    """
    wanted = (server.environment_with_huge_pages(served.env) or served.env).get("GLIBC_TUNABLES")
    arbiter = _environment(served.process.pid)  # the PID the test started: the restart kept it
    children = [stat.parent.name for stat in Path("/proc").glob("[0-9]*/stat")
                if _parent(stat) == served.process.pid]

    assert children, "no workers under the arbiter"
    for environment in [arbiter, *(_environment(int(pid)) for pid in children)]:
        assert environment.get("GLIBC_TUNABLES") == wanted


def test_head_answers_carry_no_body_and_gunicorn_drops_nothing(served):
    for path in HEAD_PATHS:
        status, headers, body = served.request("HEAD", path)
        assert body == b"", path
        if path in ("/readyz", "/api/v1/openapi.json"):  # the same bytes every time: lengths compare
            assert status == 200
            assert int(headers["Content-Length"]) == len(served.request("GET", path)[2]), path
    out, err = served.logs()
    assert "body bytes on a no-body response" not in out + err


def test_logs_are_json_lines_with_request_ids(served):
    status, headers, _ = served.request("GET", "/api/v1/auth/session")
    assert status == 200
    request_id = headers["X-Request-ID"]
    time.sleep(0.3)  # the access line is written once the response has gone
    out, err = served.logs()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert lines[0].startswith("twostep serving on http://127.0.0.1:")
    parsed = []
    for line in lines[1:]:
        if line.startswith("twostep: warning:"):  # the start-up checks, before logging is set up
            continue
        parsed.append(json.loads(line))  # every other line is one JSON object
    access = [e for e in parsed if e["logger"] == "gunicorn.access" and e.get("request_id") == request_id]
    assert len(access) == 1
    assert access[0]["method"] == "GET" and access[0]["path"] == "/api/v1/auth/session"
    assert access[0]["status"] == 200 and {"time", "level", "duration_ms"} <= set(access[0])


def test_metrics_add_up_the_workers_and_need_the_token(served):
    assert served.request("GET", "/metrics")[0] == 401
    failures = 4  # below the free attempts: the right password afterwards is not throttled
    for _ in range(failures):  # fresh connections: both workers take some
        ApiSession(served.url).call("POST", "/auth/login", {"login": "alice", "password": "wrong"})
    status, _, _ = ApiSession(served.url).call("POST", "/auth/login", {"login": "alice", "password": PASSWORD})
    assert status == 200
    status, headers, body = served.request("GET", "/metrics",
                                           headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200
    text = body.decode()
    assert f'twostep_sign_ins_total{{method="password",outcome="failure"}} {failures}.0' in text
    assert 'twostep_sign_ins_total{method="password",outcome="success"} 1.0' in text
    assert (served.data / "metrics").is_dir() and any((served.data / "metrics").iterdir())


def _web_workers(arbiter: int) -> set[int]:
    """The pids of the gunicorn workers under `arbiter` (not its queue worker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except (OSError, NotADirectoryError):
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == arbiter and b"--parent" not in command:
            found.add(int(entry.name))
    return found


def test_a_worker_is_replaced_after_max_requests_and_no_request_is_lost(tmp_path):
    if os.environ.get("TWOSTEP_DATABASE_URL"):
        pytest.skip("the SQLite run covers the server's own settings")
    server = Served(tmp_path / "data", MAX_REQUESTS="10")
    try:
        deadline = time.monotonic() + 30  # the server answers once one worker is up; wait for both
        while len(first := _web_workers(server.process.pid)) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        statuses = [server.request("GET", "/login")[0] for _ in range(60)]
        deadline = time.monotonic() + 30
        while (len(now := _web_workers(server.process.pid)) != 2 or now == first) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()

    assert statuses == [200] * 60
    assert len(first) == 2
    assert len(now) == 2
    assert now != first


def test_multipart_body_to_the_api_is_415_and_logs_no_traceback(served):
    session = ApiSession(served.url)
    session.call("GET", "/auth/session")
    token = next(c.value for c in session.jar if c.name == "csrftoken")
    boundary = "x" + secrets.token_hex(8)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"login\"\r\n\r\nalice\r\n"
            f"--{boundary}--\r\n").encode()
    status, _, answer = served.request("POST", "/api/v1/auth/login", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRFToken": token,
        "Cookie": f"csrftoken={token}"})
    assert status == 415 and json.loads(answer)["error"] == "unsupported_media_type"
    out, err = served.logs()
    assert "Traceback" not in out + err and '"level": "ERROR"' not in out + err


def test_a_long_valid_query_is_not_refused_414(served):
    emoji = "%F0%9F%98%80" * 150  # 150 characters, each 12 bytes once percent-encoded
    status, _, _ = served.request("GET", f"/api/v1/account/users?q={emoji}&cursor={emoji}&limit=200&enrolled=true")
    assert status == 401  # not signed in; the request line itself was taken


# PostgreSQL goes away and comes back ---------------------------------------------------------

class Proxy:
    """A TCP proxy to PostgreSQL that the test stops (every connection cut) and starts again."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, _free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self.listener, *self.sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def postgres_url():
    url = os.environ.get("TWOSTEP_DATABASE_URL", "")
    if not url.startswith("postgres"):
        if os.environ.get("TWOSTEP_REQUIRE_POSTGRES"):
            pytest.fail("this run must use PostgreSQL")
        pytest.skip("needs PostgreSQL (make test-postgres, and always in CI)")
    config = dj_database_url.parse(url)
    name = f"{config['NAME']}_outage_{secrets.token_hex(4)}"
    yield config, name
    with psycopg.connect(host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"],
                         password=config["PASSWORD"] or None, dbname="postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_while_postgres_is_away_api_is_json_503_and_it_reconnects_after(postgres_url, tmp_path):
    config, name = postgres_url
    proxy = Proxy((config["HOST"] or "127.0.0.1", int(config["PORT"] or 5432)))
    proxy.start()
    user = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    server = Served(tmp_path / "data", DATABASE_URL=f"postgres://{user}@127.0.0.1:{proxy.port}/{name}")
    try:
        server.cli("account", "create", "Acme", "--admin", "alice", "--email", "alice@acme.example",
                   "--password-stdin", stdin=PASSWORD + "\n")
        signed_in = ApiSession(server.url)
        assert signed_in.call("POST", "/auth/login", {"login": "alice", "password": PASSWORD})[0] == 200
        for _ in range(4):  # every worker thread holds a kept connection now, or soon will
            assert signed_in.call("GET", "/me/two-factor")[0] == 200

        proxy.stop()
        for _ in range(4):
            status, headers, body = signed_in.call("GET", "/me/two-factor")
            assert status == 503, body
            assert json.loads(body)["error"] == "service_unavailable" and headers["Retry-After"].isdigit()
        status, headers, body = signed_in.page("/security")
        assert status == 503 and headers["Content-Type"].startswith("text/html") and b"unavailable" in body
        assert server.request("GET", "/healthz")[0] == 200
        status, _, body = server.request("GET", "/readyz")
        assert status == 503 and json.loads(body)["failed"] == ["database"]

        proxy.start()
        for _ in range(8):  # the very first requests after the database is back succeed
            status, _, body = signed_in.call("GET", "/me/two-factor")
            assert status == 200, body
        assert server.request("GET", "/readyz")[0] == 200

        # A restart between two requests: every kept connection is dead, and no failed request
        # had the chance to drop it. Each is checked before use and replaced.
        for _ in range(16):  # most of the 2 x 4 worker threads now hold a connection
            assert signed_in.call("GET", "/me/two-factor")[0] == 200
        proxy.stop()
        proxy.start()
        for _ in range(16):
            status, _, body = signed_in.call("GET", "/me/two-factor")
            assert status == 200, body
    finally:
        server.stop()
        proxy.stop()
    assert "Traceback" not in server.logs()[1]


def test_clients_sending_their_body_slowly_do_not_hold_up_the_others(served):
    """A request's body is read before it waits for a turn (docs/admission.md, "Turns"): slow
    senders hold threads, not the two turns of each worker, so other requests go on."""
    body = b"grant_type=authorization_code&code=" + b"x" * 40 + b"&client_id=nobody"
    slow = []
    for _ in range(6):  # more than the turns of both workers together
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=15)
        sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        slow.append(sock)
    try:
        time.sleep(0.5)  # the workers have taken the slow requests and wait for the rest of them
        started = time.monotonic()
        for _ in range(4):
            assert served.request("GET", "/login")[0] == 200
        assert time.monotonic() - started < 10
    finally:
        for sock in slow:
            sock.sendall(body[10:])
    for sock in slow:  # each slow request is answered in the end (401: no such application)
        assert sock.recv(64).startswith(b"HTTP/1.1 401")
        sock.close()


def _answers(stream, count: int) -> list[tuple[int, bytes]]:
    """Read `count` HTTP/1.1 answers with a Content-Length from one buffered socket stream."""
    found = []
    for _ in range(count):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = stream.readline()
            assert line, "the server closed the connection"
            head += line
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(next(v for k, v in fields.items() if k.lower() == "content-length"))
        found.append((int(lines[0].split()[1]), stream.read(length)))
    return found


def test_requests_on_one_connection_are_answered_at_once_pipelined_and_after_a_pause(served):
    """A thread serves the requests of a connection that come at once; one that comes later goes
    through the worker's event loop. Either way each is answered, in order, on the same connection."""
    get = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        stream = sock.makefile("rb")
        sock.sendall(get % b"/login")
        [(status, page)] = _answers(stream, 1)
        assert (status, b"csrfmiddlewaretoken" in page) == (200, True)
        sock.sendall(get % b"/api/v1/auth/session")  # at once, as a browser follows a redirect
        [(status, body)] = _answers(stream, 1)
        assert (status, json.loads(body)["stage"]) == (200, "anonymous")
        sock.sendall(get % b"/nowhere" + get % b"/healthz")  # two in one write
        assert [status for status, _ in _answers(stream, 2)] == [404, 200]
        time.sleep(0.5)  # longer than a thread waits: the connection is back in the event loop
        sock.sendall(get % b"/login")
        [(status, page)] = _answers(stream, 1)
        assert (status, b"csrfmiddlewaretoken" in page) == (200, True)


def test_a_connection_that_keeps_sending_takes_turns_with_the_others(tmp_path):
    """One thread, two connections: the first sends many requests at once, the second one request
    just after. The thread serves a few of the first's in a row, then the second's, then the rest
    of the first's, all answered in order: a connection cannot keep the thread from the others."""
    one_thread = Served(tmp_path / "data", workers=1, threads=1)
    burst = 3 * server.REQUESTS_IN_A_ROW
    get = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answered = []  # ("burst" | "single", status), in the order the answers came

    def read(sock: socket.socket, count: int, name: str) -> None:
        stream = sock.makefile("rb")
        for _ in range(count):
            [(status, _)] = _answers(stream, 1)
            answered.append((name, status))

    try:
        with socket.create_connection(("127.0.0.1", one_thread.port), timeout=15) as busy, \
                socket.create_connection(("127.0.0.1", one_thread.port), timeout=15) as single:
            busy.sendall(get * burst)
            single.sendall(get)
            readers = [threading.Thread(target=read, args=(busy, burst, "burst")),
                       threading.Thread(target=read, args=(single, 1, "single"))]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(timeout=30)
    finally:
        one_thread.stop()
    assert sorted(answered) == [("burst", 200)] * burst + [("single", 200)]
    before = answered.index(("single", 200))
    assert before < 2 * server.REQUESTS_IN_A_ROW, f"the single request waited for {before} of the burst's"


def test_connections_that_send_nothing_do_not_hold_up_the_others(served):
    """A connection without a request holds a thread for a moment only, then waits in the event
    loop: more of them than both workers have threads leave a new client served at once."""
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=15)
            for _ in range(2 * server.DEFAULT_THREADS + 8)]
    try:
        time.sleep(0.5)  # every worker has taken its share of them
        started = time.monotonic()
        assert served.request("GET", "/login")[0] == 200
        waited = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert waited < 2.5, f"a new client waited {waited:.1f} s behind connections that sent nothing"
