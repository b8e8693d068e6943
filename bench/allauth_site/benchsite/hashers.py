"""Argon2 with the parameters twostep runs with, so both sides hash alike (BENCH_ARGON2_*)."""

import os

from django.contrib.auth.hashers import Argon2PasswordHasher


class ParamArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"
    time_cost = int(os.environ.get("BENCH_ARGON2_TIME_COST", Argon2PasswordHasher.time_cost))
    memory_cost = int(os.environ.get("BENCH_ARGON2_MEMORY_COST", Argon2PasswordHasher.memory_cost))
    parallelism = int(os.environ.get("BENCH_ARGON2_PARALLELISM", Argon2PasswordHasher.parallelism))
