import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

# In front of Django: a stranger's sign-in is refused at once while the hashing gate is full
# (docs/admission.md, "Early refusal").
from twostep.early_refusal import wrap  # noqa: E402 — needs the settings configured above

application = wrap(django_application)
