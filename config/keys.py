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


def _secret() -> str:
    return secrets.token_urlsafe(50)


def _code_hash_key() -> str:
    return secrets.token_urlsafe(32)


def _split(text: str) -> list[str]:
    return [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]


def secret_keys(data_dir: Path) -> list[str]:
    """Return Django's secret keys, newest first: SECRET_KEY, then SECRET_KEY_FALLBACKS.

    TWOSTEP_SECRET_KEY and the comma-separated TWOSTEP_SECRET_KEY_FALLBACKS, else the lines of
    data_dir/secret_key, the newest first (`twostep keys rotate-secret` adds one).
    """
    given = os.environ.get("TWOSTEP_SECRET_KEY")
    if given:
        return [given.strip(), *_split(os.environ.get("TWOSTEP_SECRET_KEY_FALLBACKS", ""))]
    return _split(_read_or_create(data_dir / "secret_key", _secret))


def encryption_keys(data_dir: Path) -> list[str]:
    """Return the Fernet keys for TOTP secrets, newest first.

    TWOSTEP_ENCRYPTION_KEYS is a comma-separated list; the first encrypts, all decrypt, so a
    new key is put in front and `twostep keys reencrypt` moves every secret to it.
    """
    return _split(os.environ.get("TWOSTEP_ENCRYPTION_KEYS") or _read_or_create(
        data_dir / "encryption_keys", _fernet_key
    ))


def code_hash_keys(data_dir: Path) -> list[str]:
    """Return the HMAC keys for backup codes, newest first (TWOSTEP_CODE_HASH_KEYS or data dir)."""
    return _split(os.environ.get("TWOSTEP_CODE_HASH_KEYS") or _read_or_create(
        data_dir / "code_hash_keys", _code_hash_key
    ))


# Rotation: each kind of key, its file in the data dir, the variable that overrides the file,
# and how a new key is made.
KINDS = {
    "secret": ("secret_key", "TWOSTEP_SECRET_KEY", _secret),
    "encryption": ("encryption_keys", "TWOSTEP_ENCRYPTION_KEYS", _fernet_key),
    "code-hash": ("code_hash_keys", "TWOSTEP_CODE_HASH_KEYS", _code_hash_key),
}


def in_environment(kind: str) -> bool:
    """Tell whether this kind of key comes from the environment (then the data dir is not read)."""
    return bool(os.environ.get(KINDS[kind][1]))


def new_key(kind: str) -> str:
    return KINDS[kind][2]()


def file_keys(data_dir: Path, kind: str) -> list[str]:
    """Return the keys of one kind kept in the data dir, newest first (made on first use)."""
    name, _variable, make = KINDS[kind]
    return _split(_read_or_create(data_dir / name, make))


def write_file_keys(data_dir: Path, kind: str, keys: list[str]) -> Path:
    """Replace the data dir's keys of one kind, newest first, in one step (mode 0600)."""
    path = data_dir / KINDS[kind][0]
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)  # readers see the old list or the new one, never half of one
    return path
