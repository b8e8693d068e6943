"""The pages' addresses, all in the `web` namespace."""

from django.urls import include, path

from .views import account_admin, authenticators, misc, security, setup, signin

app_name = "web"

urlpatterns = [
    path("", security.home, name="home"),
    path("healthz", misc.healthz, name="healthz"),
    path("readyz", misc.readyz, name="readyz"),
    path("metrics", misc.prometheus_metrics, name="metrics"),
    path("language", misc.set_language, name="language"),
    # Sign-in
    path("login", signin.login, name="login"),
    path("login/code", signin.app_code, name="login_code"),
    path("login/backup-code", signin.backup_code, name="login_backup_code"),
    path("logout", signin.logout, name="logout"),
    # Account security
    path("security", security.overview, name="security"),
    path("security/setup", setup.setup, name="setup"),
    path("security/setup/confirm", setup.confirm, name="setup_confirm"),
    path("security/backup-codes", security.generate_codes, name="backup_codes"),
    path("security/disable", security.disable, name="disable"),
    path("security/recover", security.recover, name="recover"),
    path("security/authenticators/<int:authenticator_id>/rename", authenticators.rename,
         name="authenticator_rename"),
    path("security/authenticators/<int:authenticator_id>/remove", authenticators.remove,
         name="authenticator_remove"),
    # Account admin
    path("account/users", account_admin.users, name="users"),
    path("account/policy", account_admin.policy, name="policy"),
    path("account/users/<int:user_id>/disable-2fa", account_admin.disable_two_factor,
         name="admin_disable_two_factor"),
    path("", include("twostep.web.urls_activity")),  # security activity
    path("", include("twostep.web.urls_sessions")),  # sessions and remembered browsers
    path("", include("twostep.web.urls_recovery")),  # passwords, deadlines, recovery passes
    path("", include("twostep.web.urls_webauthn")),  # security keys and passkeys
    path("", include("twostep.web.urls_apps")),  # apps with access (OpenID Connect)
]
