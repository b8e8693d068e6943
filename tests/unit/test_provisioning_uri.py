"""The otpauth:// key URI and its QR code, read back as an authenticator app reads them."""

from __future__ import annotations

import base64
import shutil
import subprocess
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import segno

from twostep.core import totp

SECRET = totp.new_secret()


def parts(uri: str):
    """Return (scheme, type, label, query) the way a key-URI reader splits the URI."""
    split = urlsplit(uri)
    query = {name: values for name, values in parse_qs(split.query, strict_parsing=True).items()}
    return split.scheme, split.netloc, unquote(split.path.lstrip("/")), query


def test_provisioning_uri_has_google_key_uri_shape():
    """SECURITY.md (RFC 6238 / key URI): otpauth://totp/ISSUER:LOGIN?secret=…&issuer=…"""
    scheme, kind, label, query = parts(totp.provisioning_uri(SECRET, "alice", "Acme"))
    assert (scheme, kind, label) == ("otpauth", "totp", "Acme:alice")
    assert query == {"secret": [SECRET], "issuer": ["Acme"]}


def test_provisioning_uri_secret_is_unpadded_base32_of_160_bits():
    _, _, _, query = parts(totp.provisioning_uri(SECRET, "alice", "Acme"))
    secret = query["secret"][0]
    assert len(secret) == 32 and "=" not in secret and secret == secret.upper()
    assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_issuer_parameter_equals_label_issuer():
    _, _, label, query = parts(totp.provisioning_uri(SECRET, "bob", "Acme Corp"))
    assert label.split(":")[0] == query["issuer"][0] == "Acme Corp"


@pytest.mark.parametrize(("login", "issuer"), [("ali:ce", "Acme"), ("alice", "Ac:me"), ("a:b:c", "x:y")])
def test_provisioning_uri_removes_colons_inside_login_and_issuer(login, issuer):
    """Key URI format: the only colon in the label separates issuer from account name."""
    _, _, label, query = parts(totp.provisioning_uri(SECRET, login, issuer))
    assert label.count(":") == 1
    assert ":" not in query["issuer"][0]
    assert label.split(":")[0] == query["issuer"][0]


def test_provisioning_uri_percent_encodes_non_ascii_and_spaces():
    uri = totp.provisioning_uri(SECRET, "пётр", "Acme Corp")
    assert uri.isascii() and " " not in uri and "+" not in uri
    assert "%D0%BF%D1%91%D1%82%D1%80" in uri  # UTF-8 of "пётр"
    _, _, label, _ = parts(uri)
    assert label == "Acme Corp:пётр"


def test_provisioning_uri_cannot_be_steered_by_query_characters_in_the_login():
    _, _, label, query = parts(totp.provisioning_uri(SECRET, "eve?secret=AAAA&issuer=Evil#x", "Acme"))
    assert query == {"secret": [SECRET], "issuer": ["Acme"]}
    assert label == "Acme:eve?secret=AAAA&issuer=Evil#x"


needs_tools = pytest.mark.skipif(not (shutil.which("zbarimg") and shutil.which("oathtool")),
                                 reason="needs zbarimg and oathtool")


def decode_qr(uri: str, tmp_path) -> str:
    path = tmp_path / "qr.png"
    segno.make(uri, error="m").save(str(path), scale=5)
    result = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


@needs_tools
@pytest.mark.parametrize(("login", "issuer"), [("alice", "twostep"), ("пётр.иванов", "Acme Corp")])
def test_qr_code_round_trips_the_uri(tmp_path, login, issuer):
    uri = totp.provisioning_uri(SECRET, login, issuer)
    assert decode_qr(uri, tmp_path) == uri


@needs_tools
def test_code_from_oathtool_on_the_scanned_secret_is_accepted(tmp_path):
    """An independent TOTP implementation (oathtool) agrees with ours on the scanned key."""
    scanned = parts(decode_qr(totp.provisioning_uri(SECRET, "alice", "Acme"), tmp_path))[3]["secret"][0]
    unix_time = 1234567890 + 15
    code = subprocess.run(["oathtool", "--totp", "-b", "--now", f"@{unix_time}", scanned],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert len(code) == 6
    assert totp.match_code(SECRET, code, unix_time) == totp.Match(step=totp.time_step(unix_time), offset=0)
    assert totp.match_code(SECRET, code, unix_time + 90) is None
