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


def secret_keys() -> list[str]:
    """Return SECRET_KEY, then each of SECRET_KEY_FALLBACKS."""
    return _secret_keys()


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
