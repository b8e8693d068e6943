"""Secrets that must not live in the database: read from the environment or the data dir.

On first start the missing ones are generated into the data dir with mode 0600, so a fresh
machine needs no set-up; in production they come from the environment or a secret store.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def _read_or_create(path: Path, make) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    # O_EXCL: when two processes start at once, one writes and the other reads its file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(data_dir: Path) -> str:
    """Return Django's SECRET_KEY (TWOSTEP_SECRET_KEY, else data_dir/secret_key)."""
    return os.environ.get("TWOSTEP_SECRET_KEY") or _read_or_create(
        data_dir / "secret_key", lambda: secrets.token_urlsafe(50)
    )


def encryption_keys(data_dir: Path) -> list[str]:
    """Return the Fernet keys for TOTP secrets, newest first.

    TWOSTEP_ENCRYPTION_KEYS is a comma-separated list; the first encrypts, all decrypt, so a
    new key is put in front and `twostep keys reencrypt` moves every secret to it.
    """
    text = os.environ.get("TWOSTEP_ENCRYPTION_KEYS") or _read_or_create(
        data_dir / "encryption_keys", _fernet_key
    )
    return [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]


def code_hash_keys(data_dir: Path) -> list[str]:
    """Return the HMAC keys for backup codes, newest first (TWOSTEP_CODE_HASH_KEYS or data dir)."""
    text = os.environ.get("TWOSTEP_CODE_HASH_KEYS") or _read_or_create(
        data_dir / "code_hash_keys", lambda: secrets.token_urlsafe(32)
    )
    return [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]
