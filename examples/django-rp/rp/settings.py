"""Settings of a tiny Django site that signs its users in through twostep (mozilla-django-oidc).

Everything that names the provider comes from the environment:

    TWOSTEP_ISSUER          twostep's address, e.g. http://127.0.0.1:8000 (its OpenID Connect issuer)
    OIDC_RP_CLIENT_ID       from `twostep client create … --json`
    OIDC_RP_CLIENT_SECRET   likewise (shown once)
    EXAMPLE_DATABASE        where this site keeps its users and sessions (default: example.sqlite3 here)
    EXAMPLE_SECRET_KEY      this site's own Django secret key (default: a new one at each start)
"""

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ISSUER = os.environ.get("TWOSTEP_ISSUER", "http://127.0.0.1:8000").rstrip("/")

SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("EXAMPLE_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", *filter(None, os.environ.get("EXAMPLE_ALLOWED_HOSTS", "").split(","))]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mozilla_django_oidc",
    "rp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "rp.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("EXAMPLE_DATABASE", str(BASE_DIR / "example.sqlite3"))}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Cookies of their own: on one host (say localhost) beside twostep, the two sites must not
# overwrite each other's `sessionid` and `csrftoken` (cookies are per host, not per port).
SESSION_COOKIE_NAME = "example_sessionid"
CSRF_COOKIE_NAME = "example_csrftoken"

# Sign-in through twostep --------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["rp.auth.TwostepBackend"]
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = "RS256"  # twostep signs ID tokens with RS256; the keys are at the JWKS address
OIDC_RP_SCOPES = "openid profile email"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/oauth/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
OIDC_OP_USER_ENDPOINT = f"{ISSUER}/oauth/userinfo"
OIDC_OP_JWKS_ENDPOINT = f"{ISSUER}/oauth/jwks"
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True  # the ID token is the hint for signing out at twostep too
OIDC_OP_LOGOUT_URL_METHOD = "rp.auth.logout_url"
# Ask for a second factor every time, whatever the account's policy (urn:twostep:mfa).
OIDC_AUTH_REQUEST_EXTRA_PARAMS = {"acr_values": "urn:twostep:mfa"}
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/?failed=1"
LOGOUT_REDIRECT_URL = "/"
