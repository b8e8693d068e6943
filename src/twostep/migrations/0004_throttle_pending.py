from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('twostep', '0003_authenticators'),
    ]

    operations = [
        migrations.AddField(
            model_name='throttle',
            name='pending',
            field=models.PositiveIntegerField(default=0),
        ),
    ]
