from twostep.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a small work factor, so the suite is quick but hashes as production does.

    Through twostep's hasher, so each hash passes the hashing gate as in production.
    """

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
