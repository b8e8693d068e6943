"""Django settings for twostep. Every setting is read here, from TWOSTEP_* variables.

docs/configuration.md lists them; twostep/checks.py refuses unsafe combinations at start.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from twostep import logs

from . import keys


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"TWOSTEP_{name}", default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(f"TWOSTEP_{name}")
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"TWOSTEP_{name}", default))


BASE_DIR = Path(__file__).resolve().parent.parent
# Holds the SQLite database and the generated keys.
DATA_DIR = Path(env("DATA_DIR", "data")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)

# Django's signing key, then older ones still accepted (sessions, remembered browsers, passes).
SECRET_KEY, *SECRET_KEY_FALLBACKS = keys.secret_keys(DATA_DIR)
# Fernet keys for TOTP secrets (first encrypts; all decrypt).
TWOSTEP_ENCRYPTION_KEYS = keys.encryption_keys(DATA_DIR)
# HMAC keys for backup-code hashes (first hashes new codes; all are tried).
TWOSTEP_CODE_HASH_KEYS = keys.code_hash_keys(DATA_DIR)

DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
# Proxies whose X-Forwarded-For is believed (comma-separated addresses); none by default.
TWOSTEP_TRUSTED_PROXIES = [p.strip() for p in env("TRUSTED_PROXIES").split(",") if p.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "oauth2_provider",
    "twostep",
]

MIDDLEWARE = [
    # Outermost: HEAD answers carry GET's headers and no body; every log line names its request.
    "twostep.web.request_middleware.HeadWithoutBodyMiddleware",
    "twostep.web.request_middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "twostep.web.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the idle and absolute session limits; a signed-in user's saved
    # language; the policy's forced 2FA setup.
    "twostep.web.middleware.SessionLimitsMiddleware",
    "twostep.web.middleware.UserLanguageMiddleware",
    "twostep.web.time_zone.TimeZoneMiddleware",  # the saved or detected zone for times
    "twostep.web.middleware.SetupRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "twostep.web.middleware.SecurityHeadersMiddleware",
    # A full sign-in's answer carries the browser's device cookie (priority at the hashing gate).
    "twostep.web.middleware.DeviceCookieMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            # Django's tags with what they look up kept (twostep/templatetags): {% url %} with
            # its argument-less links reversed once per process (web/links.py), {% extends %}
            # and {% include %} here, {% translate %} of a literal and {% static %} under
            # Django's own library names. The same syntax and the same output.
            "builtins": ["twostep.templatetags.twostep_links", "twostep.templatetags.twostep_loader_tags"],
            "libraries": {"i18n": "twostep.templatetags.twostep_i18n",
                          "static": "twostep.templatetags.twostep_static"},
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "twostep.web.context.site",
            ],
        },
    },
]

_sqlite_path = DATA_DIR / "twostep.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=60)
    if env("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _sqlite_path,
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so two
        # writers queue on the busy timeout instead of failing with "database is locked".
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
        },
        "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        # Connections are kept, and a worker hands them from request to request
        # (twostep/turn_connections.py): opening one (and its PRAGMAs), and closing the last one
        # (a WAL checkpoint), on every request cost more CPU than the rest of a request.
        "CONN_MAX_AGE": 600,
    }
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # An unreachable server fails within seconds instead of hanging a sign-in or a command.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # A kept connection is checked before a request reuses it, so the first requests after the
    # database restarts reconnect instead of failing on a dead connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "twostep.User"
AUTHENTICATION_BACKENDS = ["twostep.auth_backend.LoginBackend"]
# The login is unique ignoring case (a functional constraint), which auth.W004 cannot see.
# templates.W003 would report the i18n and static libraries that TEMPLATES replaces on purpose;
# twostep.W004 reports any other name two template tag modules claim (twostep/checks.py).
SILENCED_SYSTEM_CHECKS = ["auth.W004", "templates.W003"]
LOGIN_URL = "web:login"

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

PASSWORD_HASHERS = [
    # Django's Argon2id with twostep's parameters, each hash through the hashing gate (hashers.py).
    "twostep.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Argon2id parameters (docs/configuration.md): OWASP's m=19 MiB, t=2, p=1 unless set. A stored
# hash with other parameters is hashed again at its user's next sign-in.
TWOSTEP_ARGON2_TIME_COST = env_int("ARGON2_TIME_COST", 2)
TWOSTEP_ARGON2_MEMORY_COST = env_int("ARGON2_MEMORY_COST", 19456)  # KiB
TWOSTEP_ARGON2_PARALLELISM = env_int("ARGON2_PARALLELISM", 1)
# Admission control for password hashing, per process (docs/admission.md): hashes at once
# (0: one per CPU the process may use), browsers without a device cookie allowed to wait (empty:
# as many as the slots) and for how long (seconds), how long a device-cookie browser or a
# signed-in person may wait. Past that the answer is 503 with Retry-After.
TWOSTEP_HASH_CONCURRENCY = env_int("HASH_CONCURRENCY", 0)
TWOSTEP_HASH_QUEUE_LENGTH = int(env("HASH_QUEUE_LENGTH")) if env("HASH_QUEUE_LENGTH").strip() else None
TWOSTEP_HASH_QUEUE_TIMEOUT = float(env("HASH_QUEUE_TIMEOUT", "2"))
TWOSTEP_HASH_PRIORITY_TIMEOUT = float(env("HASH_PRIORITY_TIMEOUT", "10"))
# Requests one worker process runs at once (docs/admission.md, "Turns"); its other threads wait
# their turn, or for the network, the gate or a hash, which need none. 0: no limit. Unset: one
# with SQLite (a request never waits for a database server, and the workers keep the cores
# busy), two with a database server (one request runs while another waits for its answer).
TWOSTEP_ACTIVE_REQUESTS = (int(env("ACTIVE_REQUESTS")) if env("ACTIVE_REQUESTS").strip()
                           else 1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 2)
# Days a device cookie (the priority lane, its own password throttle) lasts after a sign-in.
TWOSTEP_DEVICE_COOKIE_DAYS = env_int("DEVICE_COOKIE_DAYS", 180)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("login", "email")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Django's database sessions, written once per request (twostep/session_store.py).
SESSION_ENGINE = "twostep.session_store"
# Idle timeout: a session unused this long ends (seconds; saved on each request).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 8 * 3600)
SESSION_SAVE_EVERY_REQUEST = False
# Absolute timeout: a signed-in session ends this long after its sign-in, used or not (seconds).
TWOSTEP_SESSION_MAX_SECONDS = env_int("SESSION_MAX_SECONDS", 7 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Behind HTTPS set TWOSTEP_SECURE_COOKIES=true (cookies then never travel over plain HTTP).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
SESSION_COOKIE_NAME = "twostep_session"
CSRF_COOKIE_HTTPONLY = False  # the API client reads it to send X-CSRFToken
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "twostep.web.views.errors.csrf_failure"
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_COOKIES"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "src" / "twostep" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_COOKIE_NAME = "twostep_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"

STATIC_URL = "/static/"
STATIC_ROOT = None  # whitenoise serves straight from the app folders (WHITENOISE_USE_FINDERS)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if env("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("EMAIL_FROM", "twostep <noreply@localhost>")

# Mail leaves through a queue in the database (django-tasks with its database backend): the
# request that caused a mail never waits on SMTP, and a worker (`twostep worker`, or the one
# `twostep serve` starts) sends it, retrying with growing delays.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# Attempts per mail before it is left failed, and the delay after the first failure (seconds);
# each further delay is three times the one before, up to 12 hours.
TWOSTEP_MAIL_ATTEMPTS = env_int("MAIL_ATTEMPTS", 7)
TWOSTEP_MAIL_RETRY_SECONDS = env_int("MAIL_RETRY_SECONDS", 60)
# Seconds an idle worker waits before it looks at the queue again.
TWOSTEP_WORKER_POLL_SECONDS = float(env("WORKER_POLL_SECONDS", "1"))
# Requests a web worker of `twostep serve` answers before a fresh one replaces it (0: never).
TWOSTEP_MAX_REQUESTS = max(0, env_int("MAX_REQUESTS", 10000))
# Days sent and failed mails (and finished queue entries) are kept before the worker removes them.
TWOSTEP_MAIL_KEEP_DAYS = env_int("MAIL_KEEP_DAYS", 30)

# The name apps show beside the code (the otpauth issuer) and that pages and files carry.
TWOSTEP_ISSUER = env("ISSUER", "twostep")
# WebAuthn (security keys, passkeys): the relying party ID — the site's domain or a parent of
# it — and the exact origins allowed to use it. Empty: the host the service is reached by, and
# that host's own origin (`localhost` works over plain HTTP; an IP address never does).
TWOSTEP_WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID").strip().lower()
TWOSTEP_WEBAUTHN_ORIGINS = [o.strip().rstrip("/") for o in env("WEBAUTHN_ORIGINS").split(",") if o.strip()]
# The name the browser shows when a key is registered.
TWOSTEP_WEBAUTHN_RP_NAME = env("WEBAUTHN_RP_NAME") or TWOSTEP_ISSUER
# Minutes the half-signed-in state (password right, second factor pending) lasts.
TWOSTEP_PENDING_MINUTES = env_int("PENDING_MINUTES", 5)
# Minutes a password entry counts as fresh for a 2FA change right after sign-in.
TWOSTEP_REAUTH_MINUTES = env_int("REAUTH_MINUTES", 5)
# Failed second-factor attempts allowed before delays start, and the hard lock (NIST ≤ 100).
TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS = env_int("SECOND_FACTOR_FREE_ATTEMPTS", 5)
TWOSTEP_SECOND_FACTOR_LOCK_AFTER = env_int("SECOND_FACTOR_LOCK_AFTER", 100)
# Failed passwords per (login, address) before delays, and per address.
TWOSTEP_PASSWORD_FREE_ATTEMPTS = env_int("PASSWORD_FREE_ATTEMPTS", 5)
TWOSTEP_ADDRESS_FREE_ATTEMPTS = env_int("ADDRESS_FREE_ATTEMPTS", 50)
# Longest delay any throttle imposes, in seconds.
TWOSTEP_MAX_DELAY_SECONDS = env_int("MAX_DELAY_SECONDS", 15 * 60)
# Codes left at or below which the user is warned.
TWOSTEP_BACKUP_CODES_LOW = env_int("BACKUP_CODES_LOW", 3)
# Hours an admin's one-time sign-in pass (or a request awaiting a second admin) stays valid.
TWOSTEP_RECOVERY_PASS_HOURS = env_int("RECOVERY_PASS_HOURS", 24)
# Seconds a password reset link works (Django's setting; default 1 hour).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_SECONDS", 3600)

# The public address of the service, e.g. https://sso.example.com: every absolute link (the
# password-reset mail) is built from it, never from the request's Host header.
TWOSTEP_PUBLIC_URL = env("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# Whether the operator named the public address (TWOSTEP_PUBLIC_URL); `twostep serve` on a
# loopback address names its own. The OpenID Connect issuer is that address when named,
# otherwise the origin a request reached the service by.
TWOSTEP_PUBLIC_URL_GIVEN = bool(env("PUBLIC_URL").strip())

# OpenID Connect provider (django-oauth-toolkit, docs/architecture.md "OpenID Connect").
# Its models live in twostep (with the columns twostep needs: what a sign-in proved, per client
# policy); its endpoints are under /oauth/ and the sign-in it sends people to is ours.
OAUTH2_PROVIDER_APPLICATION_MODEL = "twostep.OAuthClient"
OAUTH2_PROVIDER_GRANT_MODEL = "twostep.OAuthGrant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "twostep.OAuthAccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "twostep.OAuthRefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "twostep.OAuthIDToken"
# The active ID-token signing key (PEM) and older ones still published in the JWKS; when not
# given, keys are generated into the data dir on first need (`twostep keys rotate-signing`).
TWOSTEP_OIDC_RSA_PRIVATE_KEY = env("OIDC_RSA_PRIVATE_KEY").strip()
TWOSTEP_OIDC_RSA_PRIVATE_KEYS_INACTIVE = [
    "-----BEGIN" + part for part in env("OIDC_RSA_PRIVATE_KEYS_INACTIVE").split("-----BEGIN") if part.strip()
]
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    # Logging out of one application revokes that application's tokens only (twostep.oidc.views).
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    "OIDC_ISS_ENDPOINT": TWOSTEP_PUBLIC_URL if TWOSTEP_PUBLIC_URL_GIVEN else "",
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post"],
    "SCOPES": {
        "openid": "OpenID Connect",
        "profile": "profile",
        "email": "email",
        "offline_access": "offline_access",
    },
    "DEFAULT_SCOPES": ["openid"],
    "OAUTH2_VALIDATOR_CLASS": "twostep.oidc.validator.Validator",
    # PKCE (S256 only) is required of public clients and accepted from confidential ones
    # (the validator decides per client).
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "ALLOWED_SCHEMES": ["https", "http"],
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": env_int("OIDC_CODE_SECONDS", 60),
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("OIDC_ACCESS_TOKEN_SECONDS", 3600),
    "ID_TOKEN_EXPIRE_SECONDS": env_int("OIDC_ID_TOKEN_SECONDS", 3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("OIDC_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REQUEST_APPROVAL_PROMPT": "force",
}

# Prometheus metrics at /metrics (off by default). When on, TWOSTEP_METRICS_TOKEN (a bearer token)
# or TWOSTEP_METRICS_ALLOW (client addresses or networks) limits who may read them.
TWOSTEP_METRICS = env_bool("METRICS")
TWOSTEP_METRICS_TOKEN = env("METRICS_TOKEN")
TWOSTEP_METRICS_ALLOW = [a.strip() for a in env("METRICS_ALLOW").split(",") if a.strip()]
# Where the gunicorn workers keep their counters for /metrics (emptied when `twostep serve` starts).
TWOSTEP_METRICS_DIR = DATA_DIR / "metrics"

# "plain" (a line of text per record) or "json" (one JSON object per line, gunicorn's access log too).
TWOSTEP_LOG_FORMAT = env("LOG_FORMAT", "plain").strip().lower()
LOGGING = logs.logging_config(TWOSTEP_LOG_FORMAT, env("LOG_LEVEL", "INFO"))
