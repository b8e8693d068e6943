"""twostep's settings for the benchmark only: config.settings with the password hasher chosen by
BENCH_HASHER, because twostep itself has no setting for it (and must not offer MD5).

    DJANGO_SETTINGS_MODULE=bench_settings PYTHONPATH=bench twostep serve …

md5            Django's MD5 hasher first: a cheap hash, to see the framework's own cost.
argon2-django  Django's Argon2 hasher with Django's default parameters.
argon2-twostep (or unset) twostep's own PASSWORD_HASHERS, untouched.
Hashers twostep lists stay behind the chosen one, so its stored hashes still verify.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import PASSWORD_HASHERS as _TWOSTEP_HASHERS

_MODE = os.environ.get("BENCH_HASHER", "argon2-twostep")
_CHOSEN = {
    "md5": "django.contrib.auth.hashers.MD5PasswordHasher",
    "argon2-django": "django.contrib.auth.hashers.Argon2PasswordHasher",
}.get(_MODE)
if _MODE == "argon2-django" and "TWOSTEP_ARGON2_TIME_COST" in globals():
    # twostep's own Argon2 hasher (and whatever it does around the hash) at Django 5.2's defaults.
    TWOSTEP_ARGON2_TIME_COST, TWOSTEP_ARGON2_MEMORY_COST, TWOSTEP_ARGON2_PARALLELISM = 2, 102400, 8
elif _CHOSEN:
    PASSWORD_HASHERS = [_CHOSEN, *(h for h in _TWOSTEP_HASHERS if h != _CHOSEN)]
