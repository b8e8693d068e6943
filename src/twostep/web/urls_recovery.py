"""Addresses of the password, deadline and recovery-pass pages (included into the `web` namespace)."""

from django.urls import path

from .views import passwords, recovery_admin

urlpatterns = [
    path("password-reset", passwords.reset, name="password_reset"),
    path("password-reset/<str:uidb64>/<str:token>", passwords.reset_confirm, name="password_reset_confirm"),
    path("security/password", passwords.change, name="password_change"),
    path("login/recovery-pass", recovery_admin.use_pass, name="login_recovery_pass"),
    path("account/users/<int:user_id>/recovery-pass", recovery_admin.issue_pass, name="admin_recovery_pass"),
    path("account/recovery-requests/<int:request_id>/approve", recovery_admin.approve,
         name="recovery_request_approve"),
    path("account/recovery-requests/<int:request_id>/cancel", recovery_admin.cancel,
         name="recovery_request_cancel"),
]
