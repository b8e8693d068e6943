"""Two processes behave as one: an app code, a backup code or a recovery pass works once in all.

Spent on A, refused on B; and fired at A and B at the same moment, accepted by exactly one.
"""

from __future__ import annotations

import pytest

from .client import PASSWORD, Client, fire_together, new_address

pytestmark = pytest.mark.multiprocess


def waiting_for_second_factor(server, login: str) -> Client:
    """Return a new browser that has passed the password step for `login` on `server`."""
    browser = Client(new_address())
    step = browser.login(server, login)
    assert step.body.get("stage") == "second_factor", step
    return browser


def race(cluster, method: str, code: str, login: str, a_first: bool) -> list[int]:
    """Send `code` from two half-signed-in browsers, one on A and one on B, at once; return the statuses."""
    on_a = waiting_for_second_factor(cluster.a, login)
    on_b = waiting_for_second_factor(cluster.b, login)
    calls = [lambda: on_a.second_factor(cluster.a, method, code),
             lambda: on_b.second_factor(cluster.b, method, code)]
    answers = fire_together(calls if a_first else calls[::-1])
    for answer in answers:
        # A used backup code is told apart as code_already_used; an app code replayed is invalid_code.
        assert answer.status == 200 or (answer.status == 401 and answer.error in ("invalid_code", "code_already_used")), answer
    return sorted(answer.status for answer in answers)


# App codes -------------------------------------------------------------------------------------

def test_app_code_spent_on_a_is_refused_on_b(cluster):
    tia = cluster.enrol("tia")
    code = tia.at(tia.confirmed_step + 1)
    assert waiting_for_second_factor(cluster.a, "tia").second_factor(cluster.a, "totp", code).status == 200

    on_b = waiting_for_second_factor(cluster.b, "tia")
    replayed = on_b.second_factor(cluster.b, "totp", code)
    assert (replayed.status, replayed.error) == (401, "invalid_code")
    assert on_b.stage(cluster.b) == "second_factor"
    # B is not refusing everything: the next code signs in there.
    assert on_b.second_factor(cluster.b, "totp", tia.at(tia.confirmed_step + 2)).status == 200


def test_app_code_raced_on_a_and_b_is_accepted_once(cluster):
    rounds = []
    for login in ("tom", "ted"):
        factor = cluster.enrol(login)
        for later in (1, 2):
            code = factor.at(factor.confirmed_step + later)
            rounds.append(race(cluster, "totp", code, login, a_first=later == 1))
    assert rounds == [[200, 401]] * 4


# Backup codes ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bea(cluster):
    return cluster.enrol("bea")


def test_backup_code_spent_on_a_is_refused_on_b(cluster, bea):
    code = bea.backup_codes[0]
    spent = waiting_for_second_factor(cluster.a, "bea").second_factor(cluster.a, "backup_code", code)
    assert spent.status == 200 and spent.body["method"] == "backup_code", spent

    on_b = waiting_for_second_factor(cluster.b, "bea")
    replayed = on_b.second_factor(cluster.b, "backup_code", code)
    assert (replayed.status, replayed.error) == (401, "code_already_used")
    assert on_b.stage(cluster.b) == "second_factor"


def test_backup_code_raced_on_a_and_b_is_accepted_once(cluster, bea):
    rounds = [race(cluster, "backup_code", code, "bea", a_first=i % 2 == 0)
              for i, code in enumerate(bea.backup_codes[1:5])]
    assert rounds == [[200, 401]] * 4


# Recovery passes -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def issue_pass(cluster):
    """Sign alice (the account admin) in on A; return issue(server, step_up) → a new pass for fay.

    An admin acting on someone else's factors types a code of their own (`step_up`: "totp" for
    the app's next code, "backup_code" for one of alice's backup codes), or acts within minutes of
    the last one. Each code is good once, so a test steps up on its first pass only and the
    passes right after ride on that step-up, whichever process answers them; the second step-up
    takes a backup code rather than wait up to 30 s for the app's next step.
    """
    cluster.enrol("fay")
    alice = cluster.enrol("alice")
    admin = waiting_for_second_factor(cluster.a, "alice")
    assert admin.second_factor(cluster.a, "totp", alice.at(alice.confirmed_step + 1)).status == 200
    fay = admin.get(cluster.a, "/account/users?q=fay").body["users"]
    assert [row["login"] for row in fay] == ["fay"]
    step_up_codes = {"totp": iter([alice.at(alice.confirmed_step + 2)]), "backup_code": iter(alice.backup_codes)}

    def issue(server, *, step_up: str | None = None) -> str:
        body = {"reason": "lost her phone; identity checked by a call", "password": PASSWORD}
        if step_up:
            body["code"] = next(step_up_codes[step_up])
        issued = admin.post(server, f"/account/users/{fay[0]['id']}/recovery-pass", body)
        assert issued.status == 200 and issued.body["pending"] is False, issued
        return issued.body["recovery_pass"]
    return issue


def test_recovery_pass_used_on_b_is_refused_on_a(cluster, issue_pass):
    code = issue_pass(cluster.a, step_up="totp")
    used = waiting_for_second_factor(cluster.b, "fay").second_factor(cluster.b, "recovery_pass", code)
    assert used.status == 200 and used.body["method"] == "recovery_pass", used

    on_a = waiting_for_second_factor(cluster.a, "fay")
    again = on_a.second_factor(cluster.a, "recovery_pass", code)
    assert (again.status, again.error) == (401, "invalid_code")
    assert on_a.stage(cluster.a) == "second_factor"


def test_recovery_pass_raced_on_a_and_b_is_used_once(cluster, issue_pass):
    step_ups = ["backup_code", None, None]
    rounds = [race(cluster, "recovery_pass", issue_pass(server, step_up=step_up), "fay", a_first=server is cluster.a)
              for server, step_up in zip((cluster.a, cluster.b, cluster.a), step_ups, strict=True)]
    assert rounds == [[200, 401]] * 3
