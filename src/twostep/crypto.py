"""The only code that touches the encryption and hashing keys (rotation included)."""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

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


def clear_caches() -> None:
    """Forget the key objects (after settings change in tests)."""
    _fernet.cache_clear()
