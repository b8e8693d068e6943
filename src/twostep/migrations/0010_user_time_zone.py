# The time zone a user reads times in, remembered on the user.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("twostep", "0009_oidc_provider"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="time_zone",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
