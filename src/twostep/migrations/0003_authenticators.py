# Several named authenticators per user (apps, security keys, passkeys), and the backup-code set
# in a row of its own. Every v1 app keeps working: the TotpDevice row becomes an Authenticator
# named "Authenticator app", and each user's backup-code salt moves to a BackupCodeSet.

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

V1_APP_NAME = "Authenticator app"


def forwards(apps, schema_editor):
    Authenticator = apps.get_model("twostep", "Authenticator")
    User = apps.get_model("twostep", "User")
    BackupCode = apps.get_model("twostep", "BackupCode")
    BackupCodeSet = apps.get_model("twostep", "BackupCodeSet")
    Authenticator.objects.update(kind="totp", name=V1_APP_NAME)
    Authenticator.objects.filter(confirmed=True).update(last_used_at=models.F("confirmed_at"))
    sets = []
    for user in User.objects.exclude(backup_codes_salt="").only("pk", "backup_codes_salt",
                                                                 "backup_codes_generated_at"):
        size = BackupCode.objects.filter(user_id=user.pk).count()
        sets.append(BackupCodeSet(user_id=user.pk, salt=user.backup_codes_salt, size=size,
                                  generated_at=user.backup_codes_generated_at, saved_at=user.backup_codes_generated_at))
    BackupCodeSet.objects.bulk_create(sets)
    _check_now(schema_editor)


def _check_now(schema_editor):
    """Check the rows' foreign keys now, not at commit: PostgreSQL refuses to alter a table with
    deferred checks pending ("pending trigger events"), and the steps after this one alter these."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def backwards(apps, schema_editor):
    User = apps.get_model("twostep", "User")
    BackupCodeSet = apps.get_model("twostep", "BackupCodeSet")
    Authenticator = apps.get_model("twostep", "Authenticator")
    for row in BackupCodeSet.objects.all():
        User.objects.filter(pk=row.user_id).update(backup_codes_salt=row.salt,
                                                   backup_codes_generated_at=row.generated_at)
    # v1 knew one app per user: keep the newest confirmed app, drop keys and the rest.
    Authenticator.objects.exclude(kind="totp").delete()
    for user_id in Authenticator.objects.filter(confirmed=True).values_list("user_id", flat=True).distinct():
        keep = Authenticator.objects.filter(user_id=user_id, confirmed=True).order_by("-confirmed_at").first()
        Authenticator.objects.filter(user_id=user_id, confirmed=True).exclude(pk=keep.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("twostep", "0002_activity_sessions_recovery"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="totpdevice", name="one_confirmed_device"),
        migrations.RemoveConstraint(model_name="totpdevice", name="one_pending_device"),
        migrations.RenameModel(old_name="TotpDevice", new_name="Authenticator"),
        migrations.AlterField(
            model_name="authenticator",
            name="user",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                    related_name="authenticators", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="authenticator",
            name="encrypted_secret",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="authenticator",
            name="kind",
            field=models.CharField(choices=[("totp", "Authenticator app"), ("webauthn", "Security key or passkey")],
                                   default="totp", max_length=20),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="authenticator",
            name="name",
            field=models.CharField(default=V1_APP_NAME, max_length=60, verbose_name="name"),
            preserve_default=False,
        ),
        migrations.AddField(model_name="authenticator", name="last_used_at",
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="authenticator", name="credential_id",
                            field=models.CharField(blank=True, max_length=1400, null=True, unique=True)),
        migrations.AddField(model_name="authenticator", name="public_key",
                            field=models.BinaryField(blank=True, null=True)),
        migrations.AddField(model_name="authenticator", name="sign_count",
                            field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name="authenticator", name="transports",
                            field=models.JSONField(blank=True, default=list)),
        migrations.AddField(model_name="authenticator", name="aaguid",
                            field=models.CharField(blank=True, default="", max_length=36)),
        migrations.AddField(model_name="authenticator", name="backup_eligible",
                            field=models.BooleanField(default=False)),
        migrations.AddField(model_name="authenticator", name="backup_state",
                            field=models.BooleanField(default=False)),
        migrations.AddField(model_name="authenticator", name="passkey",
                            field=models.BooleanField(default=False)),
        migrations.CreateModel(
            name="BackupCodeSet",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("salt", models.CharField(max_length=32)),
                ("size", models.PositiveSmallIntegerField()),
                ("generated_at", models.DateTimeField()),
                ("saved_at", models.DateTimeField(blank=True, null=True)),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="backup_code_set", to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="user", name="backup_codes_salt"),
        migrations.RemoveField(model_name="user", name="backup_codes_generated_at"),
        migrations.AddConstraint(
            model_name="authenticator",
            constraint=models.UniqueConstraint(condition=models.Q(("confirmed", False)), fields=("user",),
                                               name="one_pending_authenticator"),
        ),
        migrations.AddConstraint(
            model_name="authenticator",
            constraint=models.UniqueConstraint(models.F("user"), django.db.models.functions.text.Lower("name"),
                                               condition=models.Q(("confirmed", True)),
                                               name="authenticator_name_unique"),
        ),
        migrations.AlterField(
            model_name='securityevent',
            name='type',
            field=models.CharField(choices=[('sign_in', 'Signed in'), ('sign_in_failed', 'Wrong password'), ('sign_out', 'Signed out'), ('second_factor_failed', 'Wrong code after a correct password'), ('throttled', 'Attempts paused after too many failures'), ('second_factor_locked', 'Second factor locked'), ('two_factor_enabled', 'Two-factor authentication switched on'), ('two_factor_disabled', 'Two-factor authentication switched off'), ('authenticator_replaced', 'New authenticator registered'), ('authenticator_added', 'Authenticator added'), ('authenticator_removed', 'Authenticator removed'), ('authenticator_renamed', 'Authenticator renamed'), ('cloned_key_suspected', 'Security key refused: it may have been copied'), ('backup_codes_generated', 'New backup codes made'), ('backup_code_used', 'Backup code used'), ('admin_disabled_two_factor', 'Admin switched two-factor authentication off'), ('operator_disabled_two_factor', 'Operator switched two-factor authentication off'), ('policy_changed', 'Account policy changed'), ('user_created', 'User created'), ('reauth_failed', 'Wrong password when confirming a change'), ('session_ended', 'A session was signed out'), ('other_sessions_ended', 'Signed out everywhere else'), ('browser_remembered', 'Browser remembered'), ('browsers_forgotten', 'Remembered browsers forgotten'), ('password_reset_requested', 'Password reset requested'), ('password_changed', 'Password changed'), ('recovery_requested', 'Admin recovery requested'), ('recovery_approved', 'Admin recovery approved'), ('recovery_pass_issued', 'One-time sign-in pass issued'), ('recovery_pass_used', 'One-time sign-in pass used'), ('reminder_sent', 'Reminder to set up two-factor authentication sent')], max_length=40),
        ),
        migrations.AddIndex(
            model_name="authenticator",
            index=models.Index(fields=["user", "confirmed"], name="authenticator_user_confirmed"),
        ),
    ]
