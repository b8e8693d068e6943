"""The `twostep` command: the operator's thin shells over the services (DESIGN.md §3).

Every command loads the settings and creates and migrates the database first, so it works on a
fresh data dir. Results go to standard output. A refused command prints one line on standard
error and exits with 1 (a wrong command line: 2, from argparse). Mails that an action causes are
queued; a queue worker (`twostep worker`, or the one `twostep serve` runs) sends them, and the
console backend (no TWOSTEP_EMAIL_HOST) prints them to its standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
from pathlib import Path

from . import bootstrap, server

PROG = "twostep"


class CommandError(Exception):
    """A refused command; its message becomes the one line on standard error."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = argv is None  # run as a program (not called with arguments): it may restart itself
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 — expected failures become one line, the rest re-raise
        message = _expected_failure(error)
        if message is None:
            raise
        print(f"{PROG}: {message}", file=sys.stderr)
        return 1


# Commands ------------------------------------------------------------------------------------

def _serve(args) -> None:
    if args.command_line:
        server.restart_with_huge_pages()  # once, before any work: password hashes fault less
    bootstrap.compile_messages()
    if not os.environ.get("TWOSTEP_HASH_CONCURRENCY", "").strip("0 "):
        # The CPUs shared among the workers: about one hash per CPU on the machine at a time,
        # each at full speed, and a worker's peak memory one or two hashes (docs/admission.md).
        os.environ["TWOSTEP_HASH_CONCURRENCY"] = str(server.hash_slots(args.workers))
    if not os.environ.get("TWOSTEP_HASH_QUEUE_LENGTH", "").strip():
        # Strangers may wait on all threads but one: a member's request always finds a thread
        # free to take it to the gate's priority lane.
        slots = int(os.environ["TWOSTEP_HASH_CONCURRENCY"])
        os.environ["TWOSTEP_HASH_QUEUE_LENGTH"] = str(server.hash_queue_length(args.threads, slots))
    if not os.environ.get("TWOSTEP_PUBLIC_URL") and server.is_loopback(args.host):
        # Served only to this machine: its own address is the public one. Elsewhere the operator
        # names it (a system check warns until then); never the Host header of a request.
        os.environ["TWOSTEP_PUBLIC_URL"] = f"http://{server.address(args.host, args.port)}"
    _setup(quiet_logs=False)
    from django.conf import settings

    for warning in bootstrap.system_check():
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    try:
        server.check_free(args.host, args.port)
    except OSError as error:
        raise CommandError(str(error)) from None
    vendor = bootstrap.database_vendor()
    bootstrap.close_connections()  # the workers are forked: none may share the master's connection
    if settings.TWOSTEP_METRICS:
        from . import metrics

        metrics.prepare_multiprocess_dir(settings.TWOSTEP_METRICS_DIR)
    server.serve(
        args.host, args.port, workers=args.workers, threads=args.threads,
        trusted_proxies=settings.TWOSTEP_TRUSTED_PROXIES,
        log_level=os.environ.get("TWOSTEP_LOG_LEVEL") or "warning",
        json_logs=settings.TWOSTEP_LOG_FORMAT == "json",
        ready_line=f"{PROG} serving on http://{server.address(args.host, args.port)} "
                   f"(data: {settings.DATA_DIR}, database: {vendor}, {_hashing_summary()}"
                   f"{', queue worker: none' if args.no_worker else ''})",
        queue_worker=not args.no_worker,
        max_requests=settings.TWOSTEP_MAX_REQUESTS,
    )


def _hashing_summary() -> str:
    """Say how passwords are hashed and how many hashes a worker runs at once (docs/admission.md)."""
    from .hashers import describe
    from .services import admission

    limits = admission.limits()
    return f"passwords: {describe()}, {limits['slots']} at once per worker"


def _worker(args) -> None:
    bootstrap.compile_messages()
    _setup()
    from django.conf import settings

    from .worker import Worker

    worker = Worker(interval=settings.TWOSTEP_WORKER_POLL_SECONDS)
    # The console mail backend (no TWOSTEP_EMAIL_HOST) writes to standard output: keep that for results.
    with contextlib.redirect_stdout(sys.stderr):
        if args.batch:
            ran = worker.drain()
        else:
            signal.signal(signal.SIGTERM, worker.stop)
            signal.signal(signal.SIGINT, worker.stop)
            worker.run(parent=args.parent)
            return
    print(f"ran {_count(ran, 'task')}")


def _mail_status(args) -> None:
    _setup()
    from .services import outbox

    counts = outbox.counts()
    rows = [{"id": m.pk, "kind": m.kind, "login": m.user.login, "status": m.status, "attempts": m.attempts,
             "created_at": _iso(m.created_at), "next_attempt_at": _iso(m.next_attempt_at),
             "error": m.last_error} for m in outbox.troubled()]
    if args.json:
        print(json.dumps({"counts": counts, "mails": rows}, ensure_ascii=False, indent=2))
        return
    print("  ".join(f"{status}: {count}" for status, count in counts.items()))
    for row in rows:
        when = f"next attempt {row['next_attempt_at']}" if row["status"] == "queued" else "given up"
        print(f"#{row['id']} {row['kind']} to {row['login']}: {row['status']} after "
              f"{_count(row['attempts'], 'attempt')}, {when}: {row['error']}")


def _mail_retry(args) -> None:
    _setup()
    from .services import outbox

    print(f"queued {_count(outbox.retry_failed(), 'failed mail')} again")


def _migrate(args) -> None:
    applied = _setup()
    print(f"applied {_count(applied, 'migration')}" if applied else "the database is up to date")


def _account_create(args) -> None:
    password = _read_password()
    _setup()
    from .services import accounts

    account = accounts.create_account(args.name, args.admin, args.email, password)
    admin = account.users.get()
    print(f"created account {account.name} with admin {admin.login}")


def _user_create(args) -> None:
    password = _read_password()
    _setup()
    from .services import accounts

    user = accounts.create_user(args.login, args.account, args.email, password, is_admin=args.admin)
    role = "admin" if user.is_account_admin else "user"
    print(f"created {role} {user.login} in account {user.account.name}")


def _user_disable_2fa(args) -> None:
    _setup()
    from .services import recovery

    user = recovery.operator_disable_two_factor(args.login, args.reason)
    told = f"; a mail to {user.email} is queued" if user.email else ""
    print(f"two-factor authentication is off for {user.login}: their sessions have ended{told}")


def _user_show(args) -> None:
    _setup()
    from .core import clock
    from .services import accounts, throttling

    status = accounts.user_status(args.login)
    user = status.user
    facts = {
        "login": user.login,
        "account": user.account.name,
        "email": user.email,
        "is_admin": user.is_account_admin,
        "is_active": user.is_active,
        "two_factor_enabled": status.two_factor_enabled,
        "backup_codes_remaining": status.backup_codes_remaining,
        "backup_codes_generated_at": _iso(status.backup_codes_generated_at),
        "authenticators": [{"kind": kind, "name": name} for kind, name in status.authenticators],
        "last_login": _iso(status.last_login),
        "second_factor_failures": user.second_factor_failures,
        "second_factor_blocked_until": _iso(user.second_factor_blocked_until),
        "second_factor_locked": throttling.second_factor_locked(user),
    }
    if args.json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return
    if facts["second_factor_locked"]:
        second_factor = "locked (`twostep user disable-2fa` lets the user back in)"
    elif user.second_factor_blocked_until and user.second_factor_blocked_until > clock.utcnow():
        second_factor = f"paused until {_when(user.second_factor_blocked_until)}"
    else:
        second_factor = "usable"
    made = status.backup_codes_generated_at
    rows = [
        ("login", user.login),
        ("account", user.account.name),
        ("e-mail", user.email or "-"),
        ("admin", _yes(user.is_account_admin)),
        ("active", _yes(user.is_active)),
        ("two-factor", "on" if status.two_factor_enabled else "off"),
        ("authenticators", ", ".join(f"{name} ({kind})" for kind, name in status.authenticators) or "none"),
        ("backup codes", f"{status.backup_codes_remaining} left" + (f", made {_when(made)}" if made else "")),
        ("last sign-in", _when(status.last_login) if status.last_login else "never"),
        ("wrong codes", f"{user.second_factor_failures} in a row"),
        ("second factor", second_factor),
    ]
    for label, value in rows:
        print(f"{label + ':':<15} {value}")


def _keys_reencrypt(args) -> None:
    _setup()
    from .services import keys

    count = keys.reencrypt_secrets()
    print(f"re-encrypted {_count(count, 'TOTP secret')} with the newest key")


# What each kind of key protects, what a rotation asks of the operator, and the variables
# that give it in the environment (the current key, then the old ones still accepted).
_KEY_KINDS = {
    "secret": ("secret key", "then restart every twostep process",
               ("TWOSTEP_SECRET_KEY", "TWOSTEP_SECRET_KEY_FALLBACKS")),
    "encryption": ("encryption key", "then restart every twostep process and run `twostep keys reencrypt`",
                   ("TWOSTEP_ENCRYPTION_KEYS", None)),
    "code-hash": ("code-hash key", "then restart every twostep process",
                  ("TWOSTEP_CODE_HASH_KEYS", None)),
}


def _env_keys(kind: str, keys: list[str]) -> list[str]:
    """Return the `NAME=value` lines that give `keys` (newest first) in the environment."""
    first, rest = _KEY_KINDS[kind][2]
    if rest is None:
        return [f"{first}={','.join(keys)}"]
    return [f"{first}={keys[0]}", f"{rest}={','.join(keys[1:])}"]


def _current_keys(kind: str) -> list[str]:
    from django.conf import settings

    return {"secret": lambda: [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS],
            "encryption": lambda: list(settings.TWOSTEP_ENCRYPTION_KEYS),
            "code-hash": lambda: list(settings.TWOSTEP_CODE_HASH_KEYS)}[kind]()


def _keys_rotate(args) -> None:
    bootstrap.load_settings()
    from django.conf import settings

    from config import keys as key_store

    kind = args.kind
    noun, then, _variables = _KEY_KINDS[kind]
    new = key_store.new_key(kind)
    if key_store.in_environment(kind):
        print(f"The {noun}s come from the environment; nothing was changed. Set:")
        for line in _env_keys(kind, [new, *_current_keys(kind)]):
            print(f"  {line}")
        print(then + ".")
        return
    old = key_store.file_keys(settings.DATA_DIR, kind)
    path = key_store.write_file_keys(settings.DATA_DIR, kind, [new, *old])
    print(f"put a new {noun} first in {path}; {_count(len(old), 'older key')} still accepted")
    print(then + ".")


def _keys_drop_old(args) -> None:
    _setup()
    from django.conf import settings

    from config import keys as key_store

    from .services import keys

    kind = args.kind
    noun, _then, _variables = _KEY_KINDS[kind]
    current = _current_keys(kind)
    if kind == "encryption":
        waiting = keys.secrets_needing_old_keys()
        if waiting:
            raise CommandError(f"{_count(waiting, 'TOTP secret')} still {'needs' if waiting == 1 else 'need'} "
                               "an older key: "
                               "run `twostep keys reencrypt` first; nothing was changed")
    if key_store.in_environment(kind):
        print(f"The {noun}s come from the environment; nothing was changed. Set:")
        for line in _env_keys(kind, current[:1]):
            print(f"  {line}")
        print("then restart every twostep process.")
        return
    old = key_store.file_keys(settings.DATA_DIR, kind)
    path = key_store.write_file_keys(settings.DATA_DIR, kind, old[:1])
    print(f"dropped {_count(len(old) - 1, 'older ' + noun)} from {path}; restart every twostep process.")

def _keys_rotate_signing(args) -> None:
    _setup()
    from .services import signing_keys

    rotation = signing_keys.rotate()
    if args.json:
        print(json.dumps({"rotated": rotation.rotated, "kid": rotation.kid, "published": rotation.published,
                          "path": rotation.path or None}, indent=2))
        return
    if not rotation.rotated:
        print("The ID-token signing keys come from the environment; nothing was changed. Put a new key in "
              "TWOSTEP_OIDC_RSA_PRIVATE_KEY and the current one in TWOSTEP_OIDC_RSA_PRIVATE_KEYS_INACTIVE, "
              "then restart every twostep process.")
        return
    print(f"a new ID-token signing key (kid {rotation.kid}) signs from now on; {rotation.path} holds it")
    print(f"the JWKS publishes {_count(rotation.published, 'key')}: older ones stay until the ID tokens they "
          "signed have expired. Every twostep process signs with the new key at once.")


# OpenID Connect clients ----------------------------------------------------------------------

def _print_client(facts, *, secret_note: bool = False) -> None:
    rows = [("client id", facts.client_id), ("name", facts.name),
            ("type", "public" if facts.public else "confidential"),
            ("trusted", _yes(facts.trusted)), ("requires 2FA", _yes(facts.require_two_factor)),
            ("redirect URIs", " ".join(facts.redirect_uris)),
            ("post-logout URIs", " ".join(facts.post_logout_uris) or "-"),
            ("created", _when(facts.created_at) if facts.created_at else "-")]
    if facts.secret is not None:
        rows.insert(1, ("client secret", facts.secret))
    for label, value in rows:
        print(f"{label + ':':<18} {value}")
    if secret_note and facts.secret is not None:
        print("keep the secret now: it is stored only as a hash and cannot be shown again")


def _client_create(args) -> None:
    _setup()
    from .services import oidc_clients

    facts = oidc_clients.create(args.name, args.redirect_uri, post_logout_uris=args.post_logout_uri or [],
                                public=args.public, trusted=args.trusted, require_two_factor=args.require_2fa)
    if args.json:
        print(json.dumps(facts.as_json(), ensure_ascii=False, indent=2))
        return
    _print_client(facts, secret_note=True)


def _client_list(args) -> None:
    _setup()
    from .services import oidc_clients

    clients = oidc_clients.listing()
    if args.json:
        print(json.dumps({"clients": [c.as_json() for c in clients]}, ensure_ascii=False, indent=2))
        return
    if not clients:
        print("no applications yet (`twostep client create` registers one)")
    for facts in clients:
        flags = ["public" if facts.public else "confidential"]
        flags += ["trusted"] if facts.trusted else []
        flags += ["requires 2FA"] if facts.require_two_factor else []
        print(f"{facts.client_id}  {facts.name}  ({', '.join(flags)})  {' '.join(facts.redirect_uris)}")


def _client_show(args) -> None:
    _setup()
    from .services import oidc_clients

    facts = oidc_clients.show(args.client_id)
    if args.json:
        print(json.dumps(facts.as_json(), ensure_ascii=False, indent=2))
        return
    _print_client(facts)


def _client_remove(args) -> None:
    _setup()
    from .services import oidc_clients

    facts = oidc_clients.remove(args.client_id)
    print(f"removed {facts.name} ({facts.client_id}); its tokens and consents are gone")


def _client_rotate_secret(args) -> None:
    _setup()
    from .services import oidc_clients

    facts = oidc_clients.rotate_secret(args.client_id)
    if args.json:
        print(json.dumps({"client_id": facts.client_id, "client_secret": facts.secret}, indent=2))
        return
    print(f"client secret:     {facts.secret}")
    print(f"the old secret of {facts.name} no longer works; keep this one now: it cannot be shown again")


def _backup(args) -> None:
    _setup()
    from django.conf import settings

    from . import backup

    print(backup.back_up(Path(args.path)))
    keys = "TWOSTEP_SECRET_KEY, TWOSTEP_ENCRYPTION_KEYS and TWOSTEP_CODE_HASH_KEYS"
    print(f"keep it with the keys ({keys}, or the files secret_key, encryption_keys and code_hash_keys "
          f"in {settings.DATA_DIR}): without them TOTP secrets and backup codes cannot be used")


def _reminders_send(args) -> None:
    _setup()
    from .services import deadlines

    queued = deadlines.send_due_reminders()
    print(f"queued {_count(queued, 'reminder')}")


# The command line ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Self-hosted sign-in with app codes and backup codes: the operator's command.",
        epilog="Configuration comes from TWOSTEP_* environment variables (docs/configuration.md).",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = _command(commands, "serve", _serve, "migrate, then serve the web pages and the API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=_number(1, 65535), default=8000, help="(default: %(default)s)")
    serve.add_argument("--workers", type=_number(1, 256), default=server.DEFAULT_WORKERS, metavar="N",
                       help="worker processes (default: %(default)s)")
    serve.add_argument("--threads", type=_number(1, 256), default=server.DEFAULT_THREADS, metavar="N",
                       help="threads per worker (default: %(default)s)")
    serve.add_argument("--no-worker", action="store_true",
                       help="run no queue worker beside the web workers (run `twostep worker` elsewhere)")

    worker = _command(commands, "worker", _worker, "send queued mail until stopped (SIGTERM, Ctrl-C)",
                      "Run the queued tasks (mail, password reset requests) until stopped. `twostep serve` "
                      "runs one itself; run this where serve runs with --no-worker, on as many machines "
                      "as you like.")
    worker.add_argument("--batch", action="store_true", help="run what is due now, then stop")
    worker.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # stop when this process is gone

    _command(commands, "migrate", _migrate, "create or update the database tables, then stop")

    account = _group(commands, "account", "manage accounts (organisations)")
    create = _command(account, "create", _account_create, "create an account with its first admin")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--admin", required=True, metavar="LOGIN", help="the first admin's login")
    create.add_argument("--email", required=True, help="the first admin's e-mail address")
    _password_stdin(create)

    user = _group(commands, "user", "manage users")
    create = _command(user, "create", _user_create, "create a user in an existing account")
    create.add_argument("login", metavar="LOGIN")
    create.add_argument("--account", required=True, metavar="NAME")
    create.add_argument("--email", required=True)
    create.add_argument("--admin", action="store_true", help="make the user an admin of the account")
    _password_stdin(create)
    disable = _command(user, "disable-2fa", _user_disable_2fa, "switch a user's 2FA off (break-glass)",
                       "Switch a user's two-factor authentication off, for any account: the user's "
                       "sessions end, the event is audited and the user is told by e-mail.")
    disable.add_argument("login", metavar="LOGIN")
    disable.add_argument("--reason", required=True, metavar="TEXT", help="why; kept in the audit log")
    show = _command(user, "show", _user_show, "show a user's two-factor status")
    show.add_argument("login", metavar="LOGIN")
    show.add_argument("--json", action="store_true", help="print JSON")

    keys = _group(commands, "keys", "rotate the keys (docs/operations.md, \"Rotating keys\")")
    _command(keys, "reencrypt", _keys_reencrypt,
             "re-encrypt every TOTP secret with the newest key in TWOSTEP_ENCRYPTION_KEYS")
    for kind, (noun, _then, _variables) in _KEY_KINDS.items():
        rotate = _command(keys, f"rotate-{kind}", _keys_rotate, f"put a new {noun} first; old ones stay accepted",
                          f"Make a new {noun} and put it first in the data dir, keeping the old ones "
                          "accepted; when the keys come from the environment, print what to set instead.")
        rotate.set_defaults(kind=kind)
    signing = _command(keys, "rotate-signing", _keys_rotate_signing,
                       "make a new ID-token signing key; the old one stays in the JWKS until its tokens expire",
                       "Make a new RSA key that signs OpenID Connect ID tokens from now on. The old key stays "
                       "published at /oauth/jwks until every ID token it signed has expired, so applications "
                       "keep accepting them.")
    signing.add_argument("--json", action="store_true", help="print JSON")
    drop = _command(keys, "drop-old", _keys_drop_old, "stop accepting every key but the newest of one kind",
                    "Keep only the newest key of one kind. What was made under an older key stops working: "
                    "for the secret key, sessions signed, browsers remembered and passes issued before the "
                    "rotation; for the code-hash key, backup codes made before it. Encryption keys are "
                    "dropped only once no TOTP secret needs them.")
    drop.add_argument("kind", choices=sorted(_KEY_KINDS), metavar="KIND",
                      help="secret, encryption or code-hash")

    backup = _command(commands, "backup", _backup, "copy the database to a file, safely while serving",
                      "Copy the database to PATH while the service runs: SQLite through its online "
                      "backup API, PostgreSQL with pg_dump (custom format, for pg_restore). The keys "
                      "are not in the copy: keep them with it (docs/operations.md).")
    backup.add_argument("path", metavar="PATH", help="the file to write; it must not exist")

    client = _group(commands, "client", "applications that sign their users in through twostep (OpenID Connect)")
    create = _command(client, "create", _client_create, "register an application; prints its id and secret once",
                      "Register an application (an OpenID Connect client). Its secret is printed once and kept "
                      "only as a hash. Redirect URIs must use https (http only for localhost or 127.0.0.1) "
                      "and have no fragment.")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--redirect-uri", action="append", required=True, metavar="URI",
                        help="where sign-ins return to (repeat for more)")
    create.add_argument("--post-logout-uri", action="append", metavar="URI",
                        help="where a sign-out may return to (repeat for more)")
    create.add_argument("--public", action="store_true",
                        help="a browser or mobile app that cannot keep a secret (PKCE S256 required)")
    create.add_argument("--trusted", action="store_true", help="skip the consent page (your own applications)")
    create.add_argument("--require-2fa", action="store_true",
                        help="every sign-in to it needs a second factor")
    create.add_argument("--json", action="store_true", help="print JSON")
    listing = _command(client, "list", _client_list, "list the applications")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = _command(client, "show", _client_show, "show one application")
    show.add_argument("client_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    remove = _command(client, "remove", _client_remove, "remove an application, its tokens and consents")
    remove.add_argument("client_id", metavar="ID")
    rotate = _command(client, "rotate-secret", _client_rotate_secret,
                      "give an application a new secret (printed once); the old one stops working")
    rotate.add_argument("client_id", metavar="ID")
    rotate.add_argument("--json", action="store_true", help="print JSON")

    reminders = _group(commands, "reminders", "reminders of required-2FA deadlines")
    _command(reminders, "send", _reminders_send,
             "queue the reminders due 7 days and 1 day before each account's 2FA deadline (run daily)")

    mail = _group(commands, "mail", "the mail queue")
    status = _command(mail, "status", _mail_status,
                      "count mails by status; list those being retried and those given up on")
    status.add_argument("--json", action="store_true", help="print JSON")
    _command(mail, "retry", _mail_retry, "queue every failed mail again (after fixing the mail server)")
    return parser


def _command(commands, name: str, run, summary: str, description: str = "") -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=summary, description=description or summary)
    command.set_defaults(run=run)
    return command


def _group(commands, name: str, summary: str):
    group = commands.add_parser(name, help=summary, description=summary)
    return group.add_subparsers(title="commands", metavar="COMMAND", required=True)


def _password_stdin(command: argparse.ArgumentParser) -> None:
    # A password given as an argument would be visible in `ps` and kept in the shell history.
    command.add_argument("--password-stdin", action="store_true", required=True,
                         help="read the password from the first line of standard input")


def _number(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value
    return parse


# Helpers -------------------------------------------------------------------------------------

def _setup(*, quiet_logs: bool = True) -> int:
    """Load the settings, create and migrate the database; return how many migrations ran."""
    bootstrap.load_settings()
    if quiet_logs:
        # The audit trail is in the database; TWOSTEP_LOG_LEVEL=INFO shows it here as well.
        from django.conf import settings

        bootstrap.log_to_stderr(PROG, os.environ.get("TWOSTEP_LOG_LEVEL") or "WARNING",
                                json=settings.TWOSTEP_LOG_FORMAT == "json")
    created = bootstrap.prepare_database()
    if created:
        print(f"{PROG}: created the PostgreSQL database {created}", file=sys.stderr)
    return bootstrap.migrate()


def _read_password() -> str:
    """Return the first line of standard input without its line break (no echo on a terminal)."""
    if sys.stdin is None:
        raise CommandError("--password-stdin: standard input is closed")
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        line = sys.stdin.buffer.readline()
        try:
            password = line.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("the password on standard input is not UTF-8 text") from None
        password = password.removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandError("no password on standard input (give it as the first line)")
    return password


def _expected_failure(error: Exception) -> str | None:
    """Return the one line to print for an expected failure, or None for a bug."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import InterfaceError, OperationalError

    from .services.errors import ServiceError

    if isinstance(error, ServiceError):
        return bootstrap.one_line(str(error.message))
    from .backup import BackupError

    if isinstance(error, (CommandError, bootstrap.SetupError, ImproperlyConfigured, BackupError)):
        return bootstrap.one_line(str(error))
    if isinstance(error, (OperationalError, InterfaceError)):
        return bootstrap.one_line(bootstrap.describe_database_error(error))
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
