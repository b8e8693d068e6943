"""The password hasher: Argon2id with parameters chosen for this service, through the hashing gate.

Django's Argon2PasswordHasher uses m=100 MiB, t=2, p=8: about a quarter of a second of CPU per
hash and 100 MiB of memory while it runs. twostep defaults to OWASP's first recommendation for
Argon2id, m=19 MiB (19456 KiB), t=2, p=1 — the same resistance class at about an eighth of the
CPU and a fifth of the memory, so a small server signs many more people in per second and a
worker's peak memory stays low. TWOSTEP_ARGON2_TIME_COST, TWOSTEP_ARGON2_MEMORY_COST (KiB) and
TWOSTEP_ARGON2_PARALLELISM change them (a system check refuses less than OWASP's minimum).
A stored hash made with other parameters is hashed again at the user's next sign-in (Django's
`must_update`); that is no password change: no session ends, no remembered browser is forgotten.

Every hash waits for a slot of the process's gate (services/admission.py), in the priority lane
unless the sign-in put the thread in the normal lane already.
"""

from __future__ import annotations

import ctypes

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher

from .services import admission

# OWASP Password Storage Cheat Sheet, Argon2id: m=19 MiB, t=2, p=1 (or equivalents with more
# memory and fewer passes, down to m=46 MiB t=1). Below this line a system check refuses to start.
OWASP_MINIMUM = {"memory_cost": 19456, "time_cost": 2, "parallelism": 1}
# The equivalents OWASP lists: (memory in KiB, time cost) with parallelism 1.
OWASP_EQUIVALENTS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


class Argon2PasswordHasher(DjangoArgon2PasswordHasher):
    """Django's Argon2id hasher with twostep's parameters, each hash through the gate."""

    def __init__(self):
        super().__init__()
        give_back_hash_memory()

    @property
    def time_cost(self) -> int:
        return settings.TWOSTEP_ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:
        return settings.TWOSTEP_ARGON2_MEMORY_COST

    @property
    def parallelism(self) -> int:
        return settings.TWOSTEP_ARGON2_PARALLELISM

    def encode(self, password, salt):
        with admission.hashing(priority=True):
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with admission.hashing(priority=True):
            return super().verify(password, encoded)


# glibc's malloc serves a block this large or larger straight from the system (mmap) and gives it
# back when freed. Left alone, its threshold climbs to the size of the last freed block (up to
# 32 MiB), so after the first hash each thread's Argon2 block (19 MiB) stays in its arena: a
# worker of four threads measured 150 MiB at rest instead of 75. A fixed threshold keeps the
# peak bounded by the gate and gives the memory back after each hash. The next hash's block is
# new to the process, and its pages fault in one by one: `twostep serve` has them come as huge
# pages where the kernel allows (server.restart_with_huge_pages).
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_given_back = False


def give_back_hash_memory() -> bool:
    """Make glibc return each hash's memory to the system when it is freed; once per process.

    Returns whether it could (not on other C libraries, where nothing is changed).
    """
    global _given_back
    if _given_back:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        _given_back = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        _given_back = False
    return _given_back


def meets_owasp(memory_cost: int, time_cost: int, parallelism: int) -> bool:
    """Tell whether Argon2id parameters are at least as costly as one of OWASP's equivalents."""
    return parallelism >= 1 and any(memory_cost >= m and time_cost >= t for m, t in OWASP_EQUIVALENTS)


def describe() -> str:
    """Say how passwords are hashed now, e.g. "argon2id m=19 MiB t=2 p=1" (MiB when whole)."""
    hasher = _first_hasher()
    if not isinstance(hasher, DjangoArgon2PasswordHasher):
        return getattr(hasher, "algorithm", "unknown")
    memory = hasher.memory_cost
    size = f"{memory // 1024} MiB" if memory % 1024 == 0 else f"{memory} KiB"
    return f"argon2id m={size} t={hasher.time_cost} p={hasher.parallelism}"


def _first_hasher():
    from django.contrib.auth.hashers import get_hasher

    return get_hasher("default")
