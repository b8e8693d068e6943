"""The `twostep` command: the operator's thin shells over the services (DESIGN.md §3).

Every command loads the settings and creates and migrates the database first, so it works on a
fresh data dir. Results go to standard output. A refused command prints one line on standard
error and exits with 1 (a wrong command line: 2, from argparse). Mails that an action sends
through the console backend (no TWOSTEP_EMAIL_HOST) are printed to standard error, so that
standard output holds only the result.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from . import bootstrap, server

PROG = "twostep"


class CommandError(Exception):
    """A refused command; its message becomes the one line on standard error."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    bootstrap.compile_messages()
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
                   f"(data: {settings.DATA_DIR}, database: {vendor})",
    )


def _migrate(args) -> None:
    applied = _setup()
    print(f"applied {_count(applied, 'migration')}" if applied else "the database is up to date")


def _account_create(args) -> None:
    password = _read_password()
    _setup()
    from .services import accounts

    with _sending_mail():
        account = accounts.create_account(args.name, args.admin, args.email, password)
    admin = account.users.get()
    print(f"created account {account.name} with admin {admin.login}")


def _user_create(args) -> None:
    password = _read_password()
    _setup()
    from .services import accounts

    with _sending_mail():
        user = accounts.create_user(args.login, args.account, args.email, password, is_admin=args.admin)
    role = "admin" if user.is_account_admin else "user"
    print(f"created {role} {user.login} in account {user.account.name}")


def _user_disable_2fa(args) -> None:
    _setup()
    from .services import recovery

    with _sending_mail() as mail:
        user = recovery.operator_disable_two_factor(args.login, args.reason)
    told = f"; the mail to {user.email} could not be sent" if mail.failed else (
        f"; a mail tells {user.email}" if user.email else "")
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
        "backup_codes_generated_at": _iso(user.backup_codes_generated_at),
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
    made = user.backup_codes_generated_at
    rows = [
        ("login", user.login),
        ("account", user.account.name),
        ("e-mail", user.email or "-"),
        ("admin", _yes(user.is_account_admin)),
        ("active", _yes(user.is_active)),
        ("two-factor", "on" if status.two_factor_enabled else "off"),
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

    with _sending_mail():
        sent = deadlines.send_due_reminders()
    print(f"sent {_count(sent, 'reminder')}")


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

    keys = _group(commands, "keys", "manage the encryption keys")
    _command(keys, "reencrypt", _keys_reencrypt,
             "re-encrypt every TOTP secret with the newest key in TWOSTEP_ENCRYPTION_KEYS")

    backup = _command(commands, "backup", _backup, "copy the database to a file, safely while serving",
                      "Copy the database to PATH while the service runs: SQLite through its online "
                      "backup API, PostgreSQL with pg_dump (custom format, for pg_restore). The keys "
                      "are not in the copy: keep them with it (docs/operations.md).")
    backup.add_argument("path", metavar="PATH", help="the file to write; it must not exist")

    reminders = _group(commands, "reminders", "reminders of required-2FA deadlines")
    _command(reminders, "send", _reminders_send,
             "send the reminders due 7 days and 1 day before each account's 2FA deadline (run daily)")
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
        bootstrap.log_to_stderr(PROG, os.environ.get("TWOSTEP_LOG_LEVEL") or "WARNING")
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


class _MailWatch(logging.Filter):
    """Notes whether a mail failed (the notifications log it and carry on)."""

    failed = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.failed = self.failed or record.levelno >= logging.ERROR
        return True


@contextlib.contextmanager
def _sending_mail():
    """Around a service call that may mail: keep mail text out of the result, watch for failures.

    The console mail backend writes to sys.stdout as it is when the mail goes out, which is inside
    the service call (when its transaction commits), so the mail lands on standard error.
    """
    watch = _MailWatch()
    logger = logging.getLogger("twostep.notifications")
    logger.addFilter(watch)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield watch
    finally:
        logger.removeFilter(watch)


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
