"""Memory of each server process, RSS and PSS, at rest and after MD5 sign-ins: `make bench-memory`.

RSS counts every page a process maps, including those it shares with its parent after a fork
(copy-on-write) and the shared libraries: summed over processes it counts those pages once per
process. PSS (/proc/PID/smaps_rollup) divides each shared page among the processes that map it,
so the processes' PSS add up to what the server holds. Both are printed, with the private part
(the pages no other process maps) and the anonymous part (heap, stacks: what malloc holds).

Starts one twostep server (`twostep serve`, its defaults) and, unless --twostep-only, the
django-allauth comparison site (gunicorn, 3 sync workers), as bench/load.py does; measures each
after start, after a few sign-ins, after N clients signing in for a while (16 then 64), and
again after 25 s at rest. Extra environment for twostep's server: --env NAME=VALUE (repeatable),
to compare settings such as MALLOC_ARENA_MAX.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402 — bench/load.py, beside this file


def smaps(pid: int) -> dict:
    """The kB figures of /proc/PID/smaps_rollup and VmRSS/VmHWM of /proc/PID/status, in MB."""
    figures = {}
    try:
        for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = row.split(":", 1)
            figures[name] = int(value.split()[0]) / 1024
    except (OSError, ValueError):
        return {}
    return {
        "rss": figures.get("Rss", 0.0), "pss": figures.get("Pss", 0.0),
        "private": figures.get("Private_Clean", 0.0) + figures.get("Private_Dirty", 0.0),
        "anon": figures.get("Anonymous", 0.0), "pss_anon": figures.get("Pss_Anon", 0.0),
        "hwm": load.status_kb(pid, "VmHWM") / 1024,
    }


def role(server: load.Server, pid: int) -> str:
    if pid == server.pid:
        return "arbiter"
    return "queue worker" if " worker" in load.process_name(pid) else "worker"


def measure(server: load.Server, label: str) -> list[dict]:
    rows = [{"role": role(server, pid), "pid": pid, **smaps(pid)} for pid in sorted(load.tree(server.pid))]
    rows = [row for row in rows if "rss" in row]
    load.record("memory", side=server.name, label=label, load_avg=os.getloadavg(), processes=rows)
    total_rss = sum(r["rss"] for r in rows)
    total_pss = sum(r["pss"] for r in rows)
    load.say(f"  {server.name:8} {label} (load {os.getloadavg()[0]:.1f}): all RSS {total_rss:.0f} MB, "
             f"PSS {total_pss:.0f} MB")
    for row in rows:
        load.say(f"    {row['role']:12} RSS {row['rss']:6.1f}  PSS {row['pss']:6.1f}  private {row['private']:6.1f}"
                 f"  anon {row['anon']:6.1f}  peak RSS {row['hwm']:6.1f} MB")
    return rows


def signins(site: load.Site, creds: load.Credentials, clients: int, seconds: float) -> None:
    run = load.closed_loop(site, "web", creds, "totp", clients, 1.0, seconds, f"{clients} clients")
    load.say(f"  {site.name:8} {clients} clients: {run.signins} sign-ins in the window, "
             f"{sum(run.errors.values())} errors")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--twostep-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0, help="each load phase (default 10)")
    parser.add_argument("--users", type=int, default=int(os.environ.get("BENCH_USERS", 2400)))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for twostep's server")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON lines here")
    options = parser.parse_args()
    extra = dict(item.split("=", 1) for item in options.env)
    load.CACHE.mkdir(parents=True, exist_ok=True)
    if options.json:
        load.JSONL = options.json
    else:
        load.JSONL = load.CACHE / f"memory-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl"
    load.say(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at start; extra env {extra or 'none'}")
    t_place, t_users = load.template("twostep", options.users)
    t_users.pop("_made_at")
    servers = [("twostep", t_place, t_users)]
    if not options.twostep_only:
        a_place, a_users = load.template("allauth", options.users)
        a_users.pop("_made_at")
        servers.append(("allauth", a_place, a_users))
    for side, place, users in servers:
        logins = list(users)[1:]
        creds = load.Credentials(users, logins)
        data = load.fresh_copy(side, place, "md5", {})
        if side == "twostep":
            server = load.start_twostep(data, "md5", **extra)
            site = load.Twostep(server)
        else:
            server = load.start_allauth(data, "md5", {})
            site = load.Allauth(server)
        try:
            time.sleep(2)
            measure(server, "after start")
            load.warm_up([site], {side: creds})
            time.sleep(1)
            measure(server, "after 4 sign-ins")
            for clients in (16, 64):
                signins(site, creds, clients, options.seconds)
                time.sleep(2)
                measure(server, f"after {clients} clients")
            time.sleep(25)
            measure(server, "at rest, 25 s later")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None if args.exc_type is SystemExit else threading.__excepthook__(args)
    sys.exit(main())
