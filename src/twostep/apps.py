from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in


class TwostepConfig(AppConfig):
    name = "twostep"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

        # Connects the signal that forgets remembered browsers when a factor or password changes,
        # in every process (the command line too), not only where the web layer imports it.
        from .services import trusted_browsers  # noqa: F401

        # A sign-in notes last_login with its audit event (services/attempts.record_sign_in);
        # Django's own handler would write the same column again on every sign-in.
        user_logged_in.disconnect(dispatch_uid="update_last_login")

        # CSRF secrets and masks from one read of the random source instead of one per character.
        from . import csrf_strings

        csrf_strings.install()
