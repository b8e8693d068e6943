"""Where a sign-in's CPU goes, in-process: SQL statements and CPU per request, time per phase.

    .venv/bin/python bench/profile_flow.py [--signins 30] [--sql] [--top 25] [--json]

Makes users with an authenticator app (bench/twostep_setup.py, MD5 hashes: the framework's own
cost, as `make bench` measures it) in a fresh data dir, then signs in through Django's test client
with CSRF checks on — the whole middleware stack, as under gunicorn, without the HTTP server —
the same five requests as bench/load.py (GET login, POST password, GET code page, POST code, GET
the protected JSON page), with an app code and with a backup code, and the JSON API's three.

For each request it prints the SQL statements (Django's CaptureQueriesContext; how many of them
are BEGIN/COMMIT/SAVEPOINT) and the CPU time (time.process_time, median over half the
sign-ins), and per sign-in the CPU of each phase — Django's handler and the views in it
(the middleware is the difference), templates, session load and save, request.user, CSRF,
audit writes, mail on the request path, throttling, the password hash, SQL executing and ORM
compiling — measured by wrapping each phase's entry points with a CPU timer (outermost calls
only; phases nest, so they do not add up). The other half of the sign-ins runs under cProfile
for the functions with the most own time (cProfile slows Python down: read its list as a
ranking). --sql lists every statement of one sign-in.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT), str(ROOT / "src")]
PASSWORD = "bench password long enough"
ME = os.environ.get("BENCH_TWOSTEP_ME", "/api/v1/me/two-factor")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TX_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b", re.I)

class Phase:
    """CPU time (time.process_time) inside the outermost calls of some functions."""

    def __init__(self, name: str):
        self.name, self.total, self.depth = name, 0.0, 0

    def wrap(self, function):
        phase = self

        @functools.wraps(function)
        def timed(*args, **kwargs):
            if phase.depth:
                phase.depth += 1
                try:
                    return function(*args, **kwargs)
                finally:
                    phase.depth -= 1
            phase.depth = 1
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                phase.total += time.process_time() - started
                phase.depth = 0

        return timed


def instrument() -> list[Phase]:
    """Wrap the entry points of each phase (after django.setup()); return the phases in report order."""
    import importlib

    # (phase name, [(module, attribute path), ...]); a class attribute is "Class.method".
    plan = [
        ("whole request (Django's handler)", [("django.core.handlers.base", "BaseHandler.get_response")]),
        ("  the views (URL resolving, process_view, the view)",
         [("django.core.handlers.base", "BaseHandler._get_response")]),
        ("template rendering", [("django.template.backends.django", "Template.render")]),
        ("session load (SELECT + decode)", [("django.contrib.sessions.backends.db", "SessionStore.load")]),
        ("session save (cycle_key, create, save, delete)",
         [("django.contrib.sessions.backends.db", "SessionStore.save"),
          ("django.contrib.sessions.backends.db", "SessionStore.create"),
          ("django.contrib.sessions.backends.db", "SessionStore.delete"),
          ("django.contrib.sessions.backends.base", "SessionBase.cycle_key")]),
        ("request.user (user and its session hash)", [("django.contrib.auth", "get_user")]),
        ("CSRF middleware", [("django.middleware.csrf", "CsrfViewMiddleware.process_request"),
                             ("django.middleware.csrf", "CsrfViewMiddleware.process_view"),
                             ("django.middleware.csrf", "CsrfViewMiddleware.process_response")]),
        ("audit writes (audit.record)", [("twostep.services.audit", "record")]),
        ("mail on the request path (notifications.notify)", [("twostep.services.notifications", "notify")]),
        ("throttling (services/throttling.py)", [("twostep.services.throttling", "*")]),
        ("password hash (MD5 here)", [("django.contrib.auth.hashers", "MD5PasswordHasher.verify"),
                                      ("django.contrib.auth.hashers", "Argon2PasswordHasher.verify")]),
        ("SQL: executing (cursor, driver, database)", [("django.db.backends.utils", "CursorWrapper._execute")]),
        ("SQL: compiling ORM queries", [("django.db.models.sql.compiler", "SQLCompiler.as_sql"),
                                        ("django.db.models.sql.compiler", "SQLInsertCompiler.as_sql"),
                                        ("django.db.models.sql.compiler", "SQLUpdateCompiler.as_sql"),
                                        ("django.db.models.sql.compiler", "SQLDeleteCompiler.as_sql")]),
    ]
    phases = []
    for name, targets in plan:
        phase = Phase(name)
        phases.append(phase)
        for module_name, attribute in targets:
            module = importlib.import_module(module_name)
            if attribute == "*":  # every function the module defines
                for key, value in list(vars(module).items()):
                    if callable(value) and getattr(value, "__module__", None) == module_name \
                            and not isinstance(value, type) and not key.startswith("__"):
                        setattr(module, key, phase.wrap(value))
                continue
            owner = module
            *path, last = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, last, phase.wrap(getattr(owner, last)))
    return phases


def make_users(data: Path, count: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    env.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_LOG_LEVEL="WARNING", BENCH_HASHER="md5",
               DJANGO_SETTINGS_MODULE="bench_settings")
    out = data / "users.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "twostep_setup.py"), "--users", str(count),
                    "--password", PASSWORD, "--out", str(out)], env=env, check=True, timeout=600,
                   capture_output=True)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signins", type=int, default=30, help="sign-ins per flow (default 30)")
    parser.add_argument("--sql", action="store_true", help="print every SQL statement of one sign-in")
    parser.add_argument("--top", type=int, default=20, help="functions to list by own CPU (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object too")
    options = parser.parse_args()
    n = options.signins
    data = Path(tempfile.mkdtemp(prefix="twostep-profile-"))
    print(f"making {3 * n + 1} users in {data} …", file=sys.stderr)
    users = make_users(data, 3 * n + 1)

    os.environ.update(TWOSTEP_DATA_DIR=str(data), TWOSTEP_LOG_LEVEL="WARNING", BENCH_HASHER="md5",
                      DJANGO_SETTINGS_MODULE="bench_settings")
    import django

    django.setup()
    import pyotp
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    logins = list(users)
    phases = instrument()

    def web(client, login, kind):
        """The five requests; yields (label, callable) so each can be measured alone."""
        page = "/login/code" if kind == "totp" else "/login/backup-code"
        state = {}

        def get_login():
            answer = client.get("/login")
            assert answer.status_code == 200, answer.status_code
            state["token"] = CSRF_INPUT.search(answer.content.decode()).group(1)

        def post_password():
            answer = client.post("/login", {"csrfmiddlewaretoken": state["token"], "login": login,
                                            "password": PASSWORD})
            assert answer.status_code == 302, answer.status_code

        def get_code():
            answer = client.get(page)
            assert answer.status_code == 200, answer.status_code
            state["token"] = CSRF_INPUT.search(answer.content.decode()).group(1)

        def post_code():
            # The next step's code (accepted, ±1 step): the set-up spent the current one moments ago.
            code = (pyotp.TOTP(users[login]["secret"]).at(time.time() + 30) if kind == "totp"
                    else users[login]["codes"][0])
            answer = client.post(page, {"csrfmiddlewaretoken": state["token"], "code": code})
            assert answer.status_code == 302 and "/login" not in answer["Location"], answer.status_code

        def get_me():
            answer = client.get(ME)
            assert answer.status_code == 200 and answer.json().get("enabled"), answer.status_code

        return [("GET login page", get_login), ("POST password", post_password), ("GET code page", get_code),
                ("POST code", post_code), (f"GET {ME}", get_me)]

    def api(client, login, kind):
        def session():
            assert client.get("/api/v1/auth/session").status_code == 200

        def login_step():
            answer = client.post("/api/v1/auth/login", {"login": login, "password": PASSWORD},
                                 content_type="application/json",
                                 HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
            assert answer.status_code == 200, answer.status_code

        def second():
            answer = client.post("/api/v1/auth/second-factor",
                                 {"method": "totp", "code": pyotp.TOTP(users[login]["secret"]).at(time.time() + 30)},
                                 content_type="application/json",
                                 HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
            assert answer.status_code == 200, answer.status_code

        return [("GET /api/v1/auth/session", session), ("POST /api/v1/auth/login", login_step),
                ("POST /api/v1/auth/second-factor", second)]

    flows = [("web sign-in, app code", web, "totp", logins[1:n + 1]),
             ("web sign-in, backup code", web, "backup_code", logins[n + 1:2 * n + 1]),
             ("JSON API sign-in, app code", api, "totp", logins[2 * n + 1:3 * n + 1])]

    # Warm up (imports, template compilation, first connection) with the spare user, password only.
    warm = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    for _ in range(3):
        warm.get("/login")
        warm.get("/login/code")
        warm.get("/api/v1/auth/session")

    results = {}
    for title, flow, kind, flow_logins in flows:
        half = len(flow_logins) // 2
        # First half: CPU and SQL per request, no profiler.
        cpu, sql, control, statements = {}, {}, {}, {}
        spent = {}  # request label -> phase name -> seconds per sign-in (summed, divided below)
        # One client (one handler: the middleware is built once, as in a server process), and a
        # new browser for each sign-in: an empty cookie jar.
        client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        for index, login in enumerate(flow_logins[:half]):
            client.cookies.clear()
            for label, step in flow(client, login, kind):
                before = [p.total for p in phases]
                with CaptureQueriesContext(connection) as captured:
                    started = time.process_time()
                    step()
                    cpu.setdefault(label, []).append(time.process_time() - started)
                row = spent.setdefault(label, dict.fromkeys((p.name for p in phases), 0.0))
                for phase, old in zip(phases, before, strict=True):
                    row[phase.name] += (phase.total - old) / half
                sql.setdefault(label, []).append(len(captured.captured_queries))
                control.setdefault(label, []).append(sum(
                    1 for q in captured.captured_queries if TX_CONTROL.match(q["sql"])))
                if index == 0:
                    statements[label] = [q["sql"] for q in captured.captured_queries]
        # Second half: the same under cProfile, for the phases.
        profile = cProfile.Profile()
        for login in flow_logins[half:]:
            client.cookies.clear()
            for _label, step in flow(client, login, kind):
                profile.enable()
                step()
                profile.disable()
        profiled = len(flow_logins) - half
        stats = pstats.Stats(profile)
        own = sorted(((v[2], f"{Path(k[0]).name}:{k[1]} {k[2]}") for k, v in stats.stats.items()), reverse=True)
        per_signin = {p.name: sum(row[p.name] for row in spent.values()) for p in phases}
        whole = per_signin[phases[0].name]

        print(f"\n{title}: {half} sign-ins measured, {profiled} profiled")
        print(f"  {'request':<34}{'SQL':>5}{' (tx)':>6}{'CPU ms':>8}{'handler':>9}{'views':>7}{'templ.':>7}"
              f"{'session':>8}{'SQL exec':>9}{'SQL comp':>9}")
        for label in cpu:
            row = spent[label]
            session = row[phases[3].name] + row[phases[4].name]
            print(f"  {label:<34}{statistics.median(sql[label]):>5.0f}{statistics.median(control[label]):>6.0f}"
                  f"{statistics.median(cpu[label]) * 1000:>8.2f}{row[phases[0].name] * 1000:>9.2f}"
                  f"{row[phases[1].name] * 1000:>7.2f}{row[phases[2].name] * 1000:>7.2f}{session * 1000:>8.2f}"
                  f"{row[phases[11].name] * 1000:>9.2f}{row[phases[12].name] * 1000:>9.2f}")
        total_sql = sum(statistics.median(v) for v in sql.values())
        total_control = sum(statistics.median(v) for v in control.values())
        total_cpu = sum(statistics.median(v) for v in cpu.values())
        print(f"  {'a whole sign-in':<34}{total_sql:>5.0f}{total_control:>6.0f}{total_cpu * 1000:>8.2f}")
        print("  per sign-in, by phase (CPU ms; phases nest: SQL runs inside the others; % of the handler's):")
        for phase in phases:
            print(f"    {phase.name:<58}{per_signin[phase.name] * 1000:8.2f} ms {100 * per_signin[phase.name] / whole:5.1f} %")
        around = whole - per_signin[phases[1].name]
        print(f"    {'  the middleware around the views (handler less views)':<58}{around * 1000:8.2f} ms "
              f"{100 * around / whole:5.1f} %")
        print(f"  the {options.top} functions with the most own CPU (cProfile, per sign-in):")
        for seconds, where in own[:options.top]:
            print(f"    {seconds / profiled * 1000:7.2f} ms  {where}")
        if options.sql:
            for label, lines in statements.items():
                print(f"  SQL of {label}:")
                for line in lines:
                    print(f"    {line[:160]}")
        results[title] = {
            "requests": {label: {"sql": statistics.median(sql[label]),
                                 "sql_transaction_control": statistics.median(control[label]),
                                 "cpu_ms": round(statistics.median(cpu[label]) * 1000, 2)} for label in cpu},
            "sql_per_signin": total_sql, "cpu_ms_per_signin": round(total_cpu * 1000, 2),
            "phases_ms_per_signin": {k.strip(): round(v * 1000, 2) for k, v in per_signin.items()},
            "phases_ms_per_request": {label: {k.strip(): round(v * 1000, 2) for k, v in row.items()}
                                      for label, row in spent.items()},
        }
    if options.json:
        print(json.dumps({"kind": "profile", "load_avg": os.getloadavg(), "flows": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
