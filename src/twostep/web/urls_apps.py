"""The addresses for "Apps with access" (included in the `web` namespace)."""

from django.urls import path

from .views import apps

urlpatterns = [
    path("security/apps/<str:client_id>/revoke", apps.revoke, name="revoke_app"),
]
