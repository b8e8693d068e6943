"""`manage.py send_reminders`: queue the due required-2FA deadline reminders (run it daily)."""

from django.core.management.base import BaseCommand

from ...services import deadlines


class Command(BaseCommand):
    help = "Queue the reminders due 7 days and 1 day before each account's required-2FA deadline."

    def handle(self, *args, **options):
        sent = deadlines.send_due_reminders()
        self.stdout.write(f"{sent} reminder(s) queued")
