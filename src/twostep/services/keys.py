"""Key rotation: move every stored TOTP secret to the newest encryption key; find those that are not."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from .. import crypto
from ..models import Authenticator
from .errors import ServiceError

BATCH = 500


class UndecryptableSecret(ServiceError):
    code = "undecryptable_secret"


def reencrypt_secrets() -> int:
    """Re-encrypt every TOTP secret with the newest key, all or nothing; return how many.

    A secret that no configured key decrypts stops the run with nothing changed, so an old key
    is never dropped while a secret still needs it.
    """
    count = 0
    with transaction.atomic():
        rows = (Authenticator.objects.select_for_update().filter(encrypted_secret__isnull=False)
                .only("pk", "encrypted_secret").order_by("pk"))
        batch = []
        for device in rows.iterator(chunk_size=BATCH):
            try:
                device.encrypted_secret = crypto.rotate_secret(device.encrypted_secret)
            except InvalidToken:
                raise UndecryptableSecret(
                    _("The TOTP secret of authenticator %(id)s cannot be decrypted with any configured "
                      "key; nothing was changed.") % {"id": device.pk}) from None
            batch.append(device)
            if len(batch) == BATCH:
                count += _save(batch)
        count += _save(batch)
    return count


def _save(batch: list) -> int:
    Authenticator.objects.bulk_update(batch, ["encrypted_secret"])
    saved = len(batch)
    batch.clear()
    return saved


def secrets_needing_old_keys() -> int:
    """Return how many TOTP secrets the newest encryption key alone cannot decrypt."""
    rows = Authenticator.objects.only("pk", "encrypted_secret").order_by("pk")
    return sum(not crypto.made_with_newest_key(device.encrypted_secret) for device in rows.iterator(chunk_size=BATCH))
