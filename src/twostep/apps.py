from django.apps import AppConfig


class TwostepConfig(AppConfig):
    name = "twostep"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
