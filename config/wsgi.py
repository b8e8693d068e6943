import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

# In front of Django, outermost first (both need the settings configured above): a stranger's
# sign-in is refused at once while the hashing gate is full (docs/admission.md, "Early
# refusal"); every other request waits for a turn of its process ("Turns").
from twostep import early_refusal, request_turns  # noqa: E402

application = early_refusal.wrap(request_turns.wrap(django_application))
