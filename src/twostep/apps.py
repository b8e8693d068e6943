from django.apps import AppConfig


class TwostepConfig(AppConfig):
    name = "twostep"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

        # Connects the signal that forgets remembered browsers when a factor or password changes,
        # in every process (the command line too), not only where the web layer imports it.
        from .services import trusted_browsers  # noqa: F401
