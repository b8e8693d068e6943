"""Twostep against itself in alternating pairs: is a change faster, measured side by side?

    .venv/bin/python bench/pairs.py [--a REV|DIR] [--b REV|DIR] [--pairs 4] [--clients 16]
                                    [--flow web|api] [--factor totp|backup_code] [--window 8]
                                    [--a-env NAME=VALUE …] [--b-env …] [--a-args "…"] [--b-args "…"]
                                    [--together] [--per-process] [--json]

Two `twostep serve` processes run at once, A on one port and B on another, each on its own copy
of the same data dir (bench/load.py's template: 6000 users, MD5 hashes). A is `--a` (default
HEAD), B is `--b` (default: the working tree as it is now); either is a git revision, taken with
`git archive`, or a directory holding `src/`, `config/` and `bench/`. The same load client as
`make bench` (bench/load.py's closed loop) then measures them in turn, A B B A A B …, so that
a machine whose pace drifts charges both sides alike; each pair gives B/A ratios of sign-ins a
second and of server CPU per sign-in, and the report is their median and range. A single run
on a shared machine can be off by a fifth; a change is shown by the pairs' median, and a
range that stays on one side of 1.

`--together`: A and B are measured at the same moment instead of in turn, each by half of the
clients (with its own half of the users), round after round; each round gives the B/A ratios.
A machine whose pace moves within seconds then charges both sides alike within the round
itself, so the ratio of CPU per sign-in varies far less from round to round (the same code on
both sides, eight of each: 0.91–1.02 together, median 0.99; 0.81–1.15 in alternating pairs,
median 0.90). The two servers compete for the cores meanwhile: the ratio of sign-ins a second
says which one the machine favours when both are busy, not what each would do alone — for the
rate, alternate.

`--a allauth` (or `--b allauth`) puts the benchmark's django-allauth site (`make bench`'s, 3 sync
workers, its own venv from `make bench-allauth-venv`) on that side instead of twostep:
`--a allauth --together` reads twostep's CPU per sign-in against allauth's, the first goal's
ratio, with the machine's drift charged to both alike.

`--a-env` / `--b-env` set a `TWOSTEP_…` setting (or any variable) for one side, `--a-args` /
`--b-args` add `twostep serve` options: the same code against itself with another setting.
`--per-process`: each run's CPU per sign-in split by process (arbiter, web workers, queue
worker). `--json`: one JSON line per run and one for the summary on standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402 — bench/load.py, beside this file

ROOT = load.ROOT
PORTS = {"A": 8106, "B": 8107}
TREE = ("src", "config", "bench")


ALLAUTH = "allauth"  # the side's spec that names the comparison site instead of a twostep


def source(spec: str | None, side: str, into: Path) -> Path | None:
    """A directory with twostep's src/, config/ and bench/: `spec` itself, a git revision's, or the
    working tree's; None for the comparison site (ALLAUTH)."""
    if spec == ALLAUTH:
        return None
    place = into / side
    if spec and Path(spec).is_dir():
        return Path(spec).resolve()
    place.mkdir()
    if spec:
        archive = subprocess.run(["git", "archive", spec, *TREE], cwd=ROOT, capture_output=True, check=False)
        if archive.returncode:
            raise SystemExit(f"pairs: {spec!r} is neither a directory nor a git revision: "
                             f"{archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(place)], input=archive.stdout, check=True)
    else:
        for name in TREE:
            shutil.copytree(ROOT / name, place / name, ignore=shutil.ignore_patterns("__pycache__"))
    return place


def start(side: str, code: Path | None, data_template: Path, into: Path, env: list[str], args: str) -> load.Server:
    if code is None:  # the comparison site, as `make bench` starts it (MD5), from its own template
        return load.start_allauth(load.fresh_copy(ALLAUTH, data_template, "md5", {}), "md5", {})
    data = into / f"data-{side}"
    shutil.copytree(data_template / "data", data)
    environment = load.twostep_env(data, "md5")
    environment["PYTHONPATH"] = f"{code / 'bench'}:{code}:{code / 'src'}"
    for pair in env:
        name, _, value = pair.partition("=")
        environment[name] = value
    command = [load.TWOSTEP_PY, "-m", "twostep", "serve", "--port", str(PORTS[side]), *args.split()]
    return load.Server(f"pairs-{side}", command, environment, PORTS[side], "/healthz", cwd=str(code / "src"))


def ticks(server: load.Server) -> dict[int, tuple[str, int]]:
    """Each process of the server's tree: (its kind, CPU ticks so far)."""
    found = {}
    for pid in load.tree(server.pid):
        stat = load._proc_stat(pid)
        if stat is None:
            continue
        name = load.process_name(pid)
        queue = server.name != ALLAUTH and " worker " in f"{name} "
        kind = "arbiter" if pid == server.pid else "queue worker" if queue else "web worker"
        found[pid] = (kind, stat[1])
    return found


def per_process(before: dict, after: dict, signins: int) -> dict[str, float]:
    """CPU ms per sign-in by process kind (the web workers added up).

    A web worker replaced meanwhile (after its maximum of requests) is gone from `after`: all its
    CPU is in the arbiter's figure once reaped, so what it had used before the run is taken off
    the arbiter's and what it used during the run stays there.
    """
    hertz = os.sysconf("SC_CLK_TCK")
    spent: dict[str, float] = {}
    for pid, (kind, now) in after.items():
        earlier = before.get(pid, (kind, 0))[1]
        spent[kind] = spent.get(kind, 0.0) + (now - earlier) / hertz * 1000 / max(signins, 1)
    gone = sum(ticks for pid, (_, ticks) in before.items() if pid not in after)
    spent["arbiter"] = spent.get("arbiter", 0.0) - gone / hertz * 1000 / max(signins, 1)
    return {kind: round(ms, 2) for kind, ms in sorted(spent.items())}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}× ({min(values):.3f}–{max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", default="HEAD",
                        help="A: a git revision, a directory or allauth (default HEAD)")
    parser.add_argument("--b", help="B: a git revision, a directory or allauth (default: the working tree)")
    parser.add_argument("--a-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--a-args", default="", help="more `twostep serve` options for A")
    parser.add_argument("--b-args", default="", help="more `twostep serve` options for B")
    parser.add_argument("--flow", choices=("web", "api"), default="web")
    parser.add_argument("--factor", choices=("totp", "backup_code"), default="totp")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per run")
    parser.add_argument("--together", action="store_true",
                        help="measure A and B at the same time, each with half of the clients")
    parser.add_argument("--per-process", action="store_true")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if options.pairs < 1 or options.clients < 1 or options.window <= 0:
        parser.error("--pairs and --clients must be at least 1, --window above 0")
    if options.together and options.clients < 2:
        parser.error("--together shares the clients between A and B: at least 2")
    report = sys.stderr if options.json else sys.stdout

    if options.a == ALLAUTH and options.b == ALLAUTH:
        parser.error("at most one side can be allauth")
    for side, spec, env, args in (("a", options.a, options.a_env, options.a_args),
                                  ("b", options.b, options.b_env, options.b_args)):
        if spec == ALLAUTH and (env or args):
            parser.error(f"--{side}-env and --{side}-args set twostep's settings: not for allauth")
    template, users = load.template("twostep", 6000)
    users.pop("_made_at")
    logins = list(users)[1:]  # the first was made through the services (bench/load.py)
    if options.together:  # each side its own users: a code used on one is no replay on the other
        half = len(logins[48:]) // 2
        credentials = {"A": load.Credentials(users, logins[48:48 + half]),
                       "B": load.Credentials(users, logins[48 + half:])}
    else:
        shared = load.Credentials(users, logins[48:])
        credentials = {"A": shared, "B": shared}
    templates = {"A": template, "B": template}
    for side, spec in (("A", options.a), ("B", options.b)):
        if spec == ALLAUTH:
            templates[side], their_users = load.template(ALLAUTH, 6000)
            their_users.pop("_made_at")
            credentials[side] = load.Credentials(their_users, list(their_users)[1:][48:])
    with tempfile.TemporaryDirectory(prefix="twostep-pairs-") as scratch:
        into = Path(scratch)
        servers = {
            "A": start("A", source(options.a, "A", into), templates["A"], into, options.a_env, options.a_args),
            "B": start("B", source(options.b, "B", into), templates["B"], into, options.b_env, options.b_args),
        }
        try:
            sites = {side: (load.Allauth if server.name == ALLAUTH else load.Twostep)(server)
                     for side, server in servers.items()}
            for side, site in sites.items():
                load.warm_up([site], {site.name: credentials[side]}, 6)
            runs: dict[str, list] = {"A": [], "B": []}
            if options.together:
                rounds = [("A", "B")] * options.pairs
            else:
                rounds = [(side,) for n in range(options.pairs) for side in (("A", "B") if n % 2 == 0 else ("B", "A"))]
            for sides in rounds:
                measured = measure(sites, servers, credentials, sides, options)
                for side, (run, by_process) in measured.items():
                    runs[side].append(run)
                    report_run(side, run, by_process, options, report)
        finally:
            for server in servers.values():
                server.stop()
    rates = [b.rate / a.rate for a, b in zip(runs["A"], runs["B"], strict=True)]
    cpu = [b.cpu_per_signin / a.cpu_per_signin for a, b in zip(runs["A"], runs["B"], strict=True)]
    how = (f"{options.pairs} rounds together, {options.clients // 2} clients each" if options.together
           else f"{options.pairs} pairs, {options.clients} clients")
    print(f"B/A over {how} ({options.flow}, {options.factor}): "
          f"sign-ins/s {spread(rates)}, CPU per sign-in {spread(cpu)}", file=report)
    if options.json:
        print(json.dumps({"kind": "summary", "pairs": options.pairs, "together": options.together,
                          "rate_ratios": [round(r, 3) for r in rates], "cpu_ratios": [round(c, 3) for c in cpu]}))
    return 0


def measure(sites: dict, servers: dict, credentials: dict, sides: tuple[str, ...], options) -> dict:
    """Run the closed loop on each of `sides` at once (the clients shared out); return each side's
    run and, with --per-process, its CPU per sign-in by process."""
    clients = options.clients // len(sides)
    before = {side: ticks(servers[side]) for side in sides}
    done: dict[str, object] = {}

    def loop(side: str) -> None:
        done[side] = load.closed_loop(sites[side], options.flow, credentials[side], options.factor, clients,
                                      2.0, options.window, f"pairs {options.flow} {options.factor}")

    threads = [threading.Thread(target=loop, args=(side,), name=f"pairs-{side}") for side in sides]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing = [side for side in sides if side not in done]
    if missing:
        raise SystemExit(f"pairs: the load on {', '.join(missing)} stopped before its window ended")
    return {side: (done[side], per_process(before[side], ticks(servers[side]), done[side].total_ok)
                   if options.per_process else None) for side in sides}


def report_run(side: str, run, by_process: dict | None, options, report) -> None:
    """Print one side's run (and its JSON line with --json)."""
    figures = {"side": side, "signins_per_s": round(run.rate, 1),
               "cpu_ms_per_signin": round(run.cpu_per_signin * 1000, 2),
               "p50_ms": load._ms(run.percentile(50)), "p99_ms": load._ms(run.percentile(99)),
               "errors": sum(run.errors.values())}
    if by_process is not None:
        figures["cpu_ms_per_signin_by_process"] = by_process
    print(f"{side}  {figures['signins_per_s']:7.1f} sign-ins/s  {figures['cpu_ms_per_signin']:6.2f} ms CPU"
          f"  p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms  errors {figures['errors']}"
          + (f"  {by_process}" if by_process is not None else ""), file=report, flush=True)
    if options.json:
        print(json.dumps({"kind": "run", **figures}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
