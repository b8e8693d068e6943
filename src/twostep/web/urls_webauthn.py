"""Addresses of the security-key and passkey pages (included into the `web` namespace)."""

from django.urls import path

from .views import webauthn

urlpatterns = [
    path("login/key", webauthn.sign_in_key, name="login_key"),
    path("login/passkey", webauthn.sign_in_passkey, name="login_passkey"),
    path("security/keys/add", webauthn.add, name="add_key"),
]
