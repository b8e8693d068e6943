"""Sign in the account admin a fuzzing run acts as; print the run's credentials as shell lines.

Used by scripts/schemathesis. The admin gets an authenticator app first, so a policy the fuzzer
sets (2FA required) cannot hold the session at setup; a second session of the same admin is
the one DELETE /me/sessions/{id} may end, so the run's own session lives to the end.
"""

from __future__ import annotations

import shlex
import sys

import pyotp
import requests


def _csrf(session: requests.Session) -> dict:
    return {"X-CSRFToken": session.cookies["csrftoken"]}


def _post(session: requests.Session, url: str, body: dict) -> dict:
    response = session.post(url, json=body, headers=_csrf(session), timeout=30)
    response.raise_for_status()
    return response.json()


def sign_in(api: str, login: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{api}/auth/session", timeout=30).raise_for_status()
    _post(session, f"{api}/auth/login", {"login": login, "password": password})
    return session


def main(api: str, login: str, password: str) -> None:
    run = sign_in(api, login, password)
    secret = _post(run, f"{api}/me/two-factor/setup", {"password": password})["secret"]
    codes = _post(run, f"{api}/me/two-factor/confirm", {"code": pyotp.TOTP(secret).now()})["backup_codes"]

    decoy = sign_in(api, login, password)
    _post(decoy, f"{api}/auth/second-factor", {"method": "backup_code", "code": codes[0]})
    rows = run.get(f"{api}/me/sessions", timeout=30).json()["sessions"]
    decoy_id = next(row["id"] for row in rows if not row["current"])

    for name, value in (("TWOSTEP_ST_SESSION", run.cookies["twostep_session"]),
                        ("TWOSTEP_ST_CSRF", run.cookies["csrftoken"]),
                        ("TWOSTEP_ST_DECOY_SESSION", str(decoy_id))):
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
