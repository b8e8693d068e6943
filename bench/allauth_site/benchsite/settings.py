"""A minimal django-allauth site to compare twostep's sign-in with: username + password, then TOTP.

Only for the benchmark (bench/load.py). Everything is allauth's defaults except what a two-step
username sign-in needs. BENCH_DATA_DIR holds the database,
BENCH_HASHER picks the password hasher as for twostep's bench run (bench/bench_settings.py);
BENCH_ALLAUTH_SQLITE=django leaves SQLite at Django's defaults (below).
"""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench-allauth"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY", "bench-only-not-a-secret-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "allauth",
    "allauth.account",
    "allauth.mfa",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "allauth.sqlite3"}}
if os.environ.get("BENCH_ALLAUTH_SQLITE", "tuned") == "tuned":
    # twostep's SQLite options (WAL, IMMEDIATE transactions, a 30 s busy timeout), so that the
    # frameworks are compared, not the disk: with Django's defaults (BENCH_ALLAUTH_SQLITE=django)
    # every commit waits for several fsyncs and concurrent writers fail with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE", "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

_HASHERS = {
    "md5": "django.contrib.auth.hashers.MD5PasswordHasher",
    "argon2-django": "django.contrib.auth.hashers.Argon2PasswordHasher",
    # twostep's Argon2 parameters, handed over by the harness (BENCH_ARGON2_*).
    "argon2-twostep": "benchsite.hashers.ParamArgon2PasswordHasher",
}
PASSWORD_HASHERS = [_HASHERS[os.environ.get("BENCH_HASHER", "argon2-django")]]

ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
LOGIN_REDIRECT_URL = "/me.json"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# allauth's per-address limits (30 sign-ins a minute; 10 failures a minute, which its own
# "Incorrect code" answers reach at 64 clients; counted in each worker's cache) would refuse the
# benchmark's clients, which all come from 127.0.0.1: raised out of reach, the checks still run.
ACCOUNT_RATE_LIMITS = {"login": "1000000/m/ip", "login_failed": "1000000/m/ip,1000000/5m/key"}

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}
