# The event of a set of backup codes confirmed as saved.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('twostep', '0010_user_time_zone'),
    ]

    operations = [
        migrations.AlterField(
            model_name='securityevent',
            name='type',
            field=models.CharField(choices=[('sign_in', 'Signed in'), ('sign_in_failed', 'Wrong password'), ('sign_out', 'Signed out'), ('second_factor_failed', 'Wrong code after a correct password'), ('throttled', 'Attempts paused after too many failures'), ('second_factor_locked', 'Second factor locked'), ('two_factor_enabled', 'Two-factor authentication switched on'), ('two_factor_disabled', 'Two-factor authentication switched off'), ('authenticator_replaced', 'New authenticator registered'), ('authenticator_added', 'Authenticator added'), ('authenticator_removed', 'Authenticator removed'), ('authenticator_renamed', 'Authenticator renamed'), ('cloned_key_suspected', 'Security key refused: it may have been copied'), ('backup_codes_generated', 'New backup codes made'), ('backup_code_used', 'Backup code used'), ('backup_codes_saved', 'Backup codes saved'), ('admin_disabled_two_factor', 'Admin switched two-factor authentication off'), ('operator_disabled_two_factor', 'Operator switched two-factor authentication off'), ('policy_changed', 'Account policy changed'), ('user_created', 'User created'), ('reauth_failed', 'Wrong password when confirming a change'), ('session_ended', 'A session was signed out'), ('other_sessions_ended', 'Signed out everywhere else'), ('browser_remembered', 'Browser remembered'), ('browsers_forgotten', 'Remembered browsers forgotten'), ('password_reset_requested', 'Password reset requested'), ('password_changed', 'Password changed'), ('recovery_requested', 'Admin recovery requested'), ('recovery_approved', 'Admin recovery approved'), ('recovery_pass_issued', 'One-time sign-in pass issued'), ('recovery_pass_used', 'One-time sign-in pass used'), ('reminder_sent', 'Reminder to set up two-factor authentication sent'), ('admin_access_denied', 'Admin action on another user refused'), ('app_authorized', 'Signed in to an application'), ('app_denied', 'Access for an application refused'), ('app_consented', 'Access granted to an application'), ('app_token_issued', 'Application received a token'), ('app_token_refreshed', 'Application refreshed its token'), ('app_revoked', 'Application access revoked'), ('app_code_replayed', 'Application sign-in code used twice'), ('app_signed_out', 'Signed out from an application')], max_length=40),
        ),
    ]
