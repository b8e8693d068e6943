from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a small work factor, so the suite is quick but hashes as production does."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
