# Passkey sign-in as an account policy, the WebAuthn user handle, and spent WebAuthn challenges.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("twostep", "0006_security_event_types"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="allow_passkeys",
            field=models.BooleanField(default=False, verbose_name="allow passkey sign-in"),
        ),
        migrations.AddField(
            model_name="user",
            name="webauthn_handle",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.CreateModel(
            name="SpentChallenge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("at", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
