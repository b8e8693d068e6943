"""Sets made before "I have saved my backup codes" was recorded count as saved.

The codes page asked for that tick box before too, but nothing kept the answer; asking every
existing user again would bury the question where it matters (a new set nobody confirmed).
"""

from django.db import migrations
from django.db.models import F


def saved_when_made(apps, schema_editor):
    BackupCodeSet = apps.get_model("twostep", "BackupCodeSet")
    BackupCodeSet.objects.filter(saved_at__isnull=True).update(saved_at=F("generated_at"))


class Migration(migrations.Migration):
    dependencies = [("twostep", "0007_passkeys")]

    operations = [migrations.RunPython(saved_when_made, migrations.RunPython.noop)]
