"""The only code that touches the encryption and hashing keys (rotation included).

Every key is a list, newest first: the newest makes, every one is accepted. Three lists:

- the secret key (Django's SECRET_KEY, then SECRET_KEY_FALLBACKS): session hashes, remembered
  browsers, recovery passes (and, inside Django, session data and reset links);
- the encryption keys (TWOSTEP_ENCRYPTION_KEYS): TOTP secrets, Fernet;
- the code-hash keys (TWOSTEP_CODE_HASH_KEYS): backup codes.

A value made under an old key is accepted until that key is dropped from its list.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

from .core import backup_codes


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode("ascii")) for key in settings.TWOSTEP_ENCRYPTION_KEYS])


def encrypt_secret(secret: str) -> bytes:
    """Encrypt a TOTP secret with the newest key."""
    return _fernet().encrypt(secret.encode("ascii"))


def decrypt_secret(token: bytes) -> str:
    """Decrypt a TOTP secret with whichever configured key made it."""
    try:
        return _fernet().decrypt(bytes(token)).decode("ascii")
    except InvalidToken as error:
        raise RuntimeError("a TOTP secret cannot be decrypted with the configured keys") from error


def made_with_newest_key(token: bytes) -> bool:
    """Tell whether the newest encryption key alone decrypts a stored secret."""
    try:
        Fernet(settings.TWOSTEP_ENCRYPTION_KEYS[0].encode("ascii")).decrypt(bytes(token))
    except InvalidToken:
        return False
    return True


def rotate_secret(token: bytes) -> bytes:
    """Re-encrypt a stored secret with the newest key."""
    return _fernet().rotate(bytes(token))


def seal(text: str) -> str:
    """Encrypt a short secret that must wait in the database (the mail queue) with the newest key."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def unseal(token: str) -> str:
    """Decrypt what `seal` made, with whichever configured key made it."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as error:
        raise RuntimeError("a queued secret cannot be decrypted with the configured keys") from error


def _code_keys() -> list[bytes]:
    return [key.encode("utf-8") for key in settings.TWOSTEP_CODE_HASH_KEYS]


def code_digest(code: str, salt: str) -> str:
    """Return the stored form of a normalised backup code under the newest key."""
    return backup_codes.hash_code(code, salt, _code_keys()[0])


def code_digests(code: str, salt: str) -> list[str]:
    """Return the code's digest under every configured key, for one indexed look-up."""
    return [backup_codes.hash_code(code, salt, key) for key in _code_keys()]


def _secret_keys() -> list[str]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def secret_digest(purpose: str, value: str, secret: str | None = None) -> str:
    """Return HMAC-SHA256 of `value` for one `purpose`, under the newest secret key (or `secret`)."""
    return salted_hmac(purpose, value, secret=secret or settings.SECRET_KEY, algorithm="sha256").hexdigest()


def secret_digests(purpose: str, value: str) -> list[str]:
    """Return the digest under every secret key, newest first, for one indexed look-up."""
    return [secret_digest(purpose, value, secret) for secret in _secret_keys()]


def session_auth_hash(value: str, secret: str | None = None) -> str:
    """Return what a session stores to prove who signed it in (Django asks again under each fallback)."""
    return secret_digest("twostep.session", value, secret)


def clear_caches() -> None:
    """Forget the key objects (after settings change in tests)."""
    _fernet.cache_clear()


# ID-token signing keys (OpenID Connect) --------------------------------------------------------
#
# RSA keys, RS256. Given by settings (TWOSTEP_OIDC_RSA_PRIVATE_KEY and ..._KEYS_INACTIVE), or
# generated on first need into the data dir: `oidc_signing_keys.json` (mode 0600) holds a list,
# newest first, each {"pem", "created_at", "retired_at"}. The first signs; a retired key stays
# published in the JWKS until every ID token it signed has expired, then it is dropped.

SIGNING_KEYS_FILE = "oidc_signing_keys.json"


def _signing_path():
    return settings.DATA_DIR / SIGNING_KEYS_FILE


def signing_keys_given() -> bool:
    """Tell whether the signing keys come from settings (the data dir is then not used)."""
    return bool(settings.TWOSTEP_OIDC_RSA_PRIVATE_KEY)


def new_signing_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _write_signing_file(entries: list[dict], *, exclusive: bool = False) -> None:
    import json
    import os
    import secrets

    path = _signing_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps(entries, indent=1)
    if exclusive:  # the first key: of two processes making it at once, one writes, both read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(data)
        return
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def signing_key_entries() -> list[dict]:
    """Return the data dir's signing keys, newest first, making the first one when there is none."""
    import json

    from .core import clock

    path = _signing_path()
    for _attempt in range(2):
        try:
            entries = json.loads(path.read_text(encoding="ascii"))
            if entries:
                return entries
        except FileNotFoundError:
            try:
                _write_signing_file([{"pem": new_signing_pem(), "created_at": clock.now(), "retired_at": None}],
                                    exclusive=True)
            except FileExistsError:
                pass
        except ValueError:  # another process is writing it this instant
            pass
    return json.loads(path.read_text(encoding="ascii"))


def _published(entries: list[dict], now: float, keep_seconds: int) -> list[dict]:
    return [entry for index, entry in enumerate(entries)
            if index == 0 or not entry.get("retired_at") or now - entry["retired_at"] < keep_seconds]


def signing_pems() -> tuple[str, list[str]]:
    """Return (the active key, the older keys still published), as PEM."""
    from oauth2_provider.settings import oauth2_settings

    from .core import clock

    if signing_keys_given():
        return settings.TWOSTEP_OIDC_RSA_PRIVATE_KEY, list(settings.TWOSTEP_OIDC_RSA_PRIVATE_KEYS_INACTIVE)
    entries = _published(signing_key_entries(), clock.now(), oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)
    return entries[0]["pem"], [entry["pem"] for entry in entries[1:]]


def rotate_signing_key() -> tuple[str, int]:
    """Put a new signing key first; the old ones stay published until their tokens expire.

    Returns the file and how many older keys it still publishes. Keys past that time are dropped.
    """
    from oauth2_provider.settings import oauth2_settings

    from .core import clock

    now = clock.now()
    old = signing_key_entries()
    for entry in old:
        entry["retired_at"] = entry.get("retired_at") or now
    kept = _published([{"pem": "", "retired_at": None}, *old], now, oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)[1:]
    _write_signing_file([{"pem": new_signing_pem(), "created_at": now, "retired_at": None}, *kept])
    return str(_signing_path()), len(kept)


def signing_jwk():
    """The active signing key as a jwcrypto JWK (what django-oauth-toolkit signs ID tokens with)."""
    from oauth2_provider.utils import jwk_from_pem

    return jwk_from_pem(signing_pems()[0])


def published_jwks() -> list[dict]:
    """Return the public keys for /oauth/jwks: the active one first, then the older ones still valid."""
    import json

    from oauth2_provider.utils import jwk_from_pem

    active, inactive = signing_pems()
    keys = []
    for pem in (active, *inactive):
        key = jwk_from_pem(pem)
        keys.append({"alg": "RS256", "use": "sig", "kid": key.thumbprint(), **json.loads(key.export_public())})
    return keys
