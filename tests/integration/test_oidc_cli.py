"""`twostep client …` and `twostep keys rotate-signing`, run as the operator runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from .test_cli import TWOSTEP, _one_line_error


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One data dir for the module: the database is made and migrated once (the first command)."""
    home = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWOSTEP_", "DJANGO_"))}
    env.update(TWOSTEP_DATA_DIR=str(home / "data"), TWOSTEP_LOG_LEVEL="WARNING")

    def twostep(*args, stdin=None):
        return subprocess.run([TWOSTEP, *args], input=stdin, env=env, capture_output=True, text=True,
                              timeout=300, cwd=home)

    twostep.data = home / "data"
    return twostep


def _create(run, *args):
    result = run("client", "create", "Wiki", "--redirect-uri", "https://wiki.example/cb", *args)
    assert result.returncode == 0, result.stderr
    return result


def test_client_create_prints_id_and_secret_once_and_show_hides_it(run):
    made = json.loads(_create(run, "--redirect-uri", "http://127.0.0.1:9000/cb", "--post-logout-uri",
                              "https://wiki.example/bye", "--trusted", "--require-2fa", "--json").stdout)
    assert made["type"] == "confidential" and made["trusted"] and made["require_2fa"]
    assert len(made["client_secret"]) >= 40
    assert made["redirect_uris"] == ["https://wiki.example/cb", "http://127.0.0.1:9000/cb"]
    assert made["post_logout_uris"] == ["https://wiki.example/bye"]
    shown = run("client", "show", made["client_id"], "--json")
    assert shown.returncode == 0 and "client_secret" not in json.loads(shown.stdout)
    assert made["client_secret"] not in run("client", "show", made["client_id"]).stdout
    text = run("client", "show", made["client_id"]).stdout
    assert "requires 2FA:" in text and "yes" in text
    listed = json.loads(run("client", "list", "--json").stdout)["clients"]
    assert made["client_id"] in [c["client_id"] for c in listed]
    assert made["client_id"] in run("client", "list").stdout


def test_public_client_has_no_secret(run):
    made = json.loads(_create(run, "--public", "--json").stdout)
    assert made["type"] == "public" and "client_secret" not in made
    line = _one_line_error(run("client", "rotate-secret", made["client_id"]))
    assert "public" in line


def test_human_output_tells_to_keep_the_secret(run):
    out = _create(run).stdout
    assert "client secret:" in out and "cannot be shown again" in out


@pytest.mark.parametrize("uri, words", [
    ("http://wiki.example/cb", "must use https"),
    ("https://wiki.example/cb#top", "fragment"),
    ("https:///cb", "not a valid address"),
    ("https://user:pw@wiki.example/cb", "user name or password"),
])
def test_bad_redirect_uris_are_refused_with_one_line(uri, words, db):
    from twostep.services import oidc_clients
    from twostep.services.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        oidc_clients.create("Wiki", [uri])
    assert words in str(refused.value.message)


def test_bad_redirect_uri_on_the_command_line(run):
    line = _one_line_error(run("client", "create", "Wiki", "--redirect-uri", "ftp://wiki.example/cb"))
    assert line.startswith("twostep: ") and "must use https" in line


def test_loopback_http_is_allowed(run):
    made = run("client", "create", "Dev", "--redirect-uri", "http://localhost:3000/cb", "--redirect-uri",
               "http://127.0.0.1/cb", "--redirect-uri", "http://[::1]:8080/cb", "--json")
    assert made.returncode == 0, made.stderr
    assert len(json.loads(made.stdout)["redirect_uris"]) == 3


def test_unknown_client_id_is_a_one_line_error(run):
    for command in (("show", "nope"), ("rotate-secret", "nope")):
        line = _one_line_error(run("client", *command))
        assert "No application with the client id nope" in line


def test_rotate_secret_and_remove(run):
    made = json.loads(_create(run, "--json").stdout)
    rotated = json.loads(run("client", "rotate-secret", made["client_id"], "--json").stdout)
    assert rotated["client_secret"] != made["client_secret"]
    removed = run("client", "remove", made["client_id"])
    assert removed.returncode == 0 and "removed Wiki" in removed.stdout
    listed = json.loads(run("client", "list", "--json").stdout)["clients"]
    assert made["client_id"] not in [c["client_id"] for c in listed]


def test_keys_rotate_signing_keeps_the_old_key_published(run):
    first = json.loads(run("keys", "rotate-signing", "--json").stdout)
    second = json.loads(run("keys", "rotate-signing", "--json").stdout)
    assert first["rotated"] and second["rotated"] and first["kid"] != second["kid"]
    assert second["published"] == first["published"] + 1  # the old keys stay while their tokens live
    path = run.data / "oidc_signing_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "signs from now on" in run("keys", "rotate-signing").stdout
