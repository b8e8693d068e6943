"""Backup codes: a new set replaces the old at once, with the password, and the user is told."""

from __future__ import annotations

import pytest

from twostep.models import BackupCode, SecurityEvent
from twostep.services import signin
from twostep.services.errors import InvalidCode, TwoFactorDisabled, WrongPassword
from twostep.services.factors import backup_codes

from ..conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db


def test_generate_makes_ten_new_codes_and_kills_the_old_at_once(enrolled, clock):
    clock.advance(3600)
    new = backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert len(new.codes) == len(set(new.codes)) == 10
    assert set(new.codes).isdisjoint(enrolled.codes)
    assert backup_codes.remaining(enrolled.user) == 10
    for old in enrolled.codes[:3]:
        with pytest.raises(InvalidCode):
            signin.check_code(enrolled.user.pk, old, ORIGIN, method="backup_code")
    signin.check_code(enrolled.user.pk, new.codes[0], ORIGIN, method="backup_code")
    enrolled.user.refresh_from_db()
    assert enrolled.user.backup_code_set.generated_at == new.generated_at
    assert new.generated_at.timestamp() == pytest.approx(clock())


def test_generate_replaces_used_codes_too(enrolled):
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)
    backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    assert BackupCode.objects.filter(user=enrolled.user).count() == 10
    assert not BackupCode.objects.filter(user=enrolled.user, used_at__isnull=False).exists()


@pytest.mark.parametrize("password", ["not the password", "", None])
def test_generate_needs_the_password(enrolled, password):
    """ASVS 7.5.1; allauth-2fa #30 (codes regenerated without re-authentication)."""
    digests = set(BackupCode.objects.filter(user=enrolled.user).values_list("digest", flat=True))
    with pytest.raises(WrongPassword):
        backup_codes.generate(enrolled.user, password, ORIGIN)
    assert set(BackupCode.objects.filter(user=enrolled.user).values_list("digest", flat=True)) == digests
    signin.check_code(enrolled.user.pk, enrolled.codes[0], ORIGIN)


def test_generate_right_after_the_password_step_may_skip_it(enrolled):
    """`fresh`: the same session proved the password moments ago (the web layer decides)."""
    assert len(backup_codes.generate(enrolled.user, None, ORIGIN, fresh=True).codes) == 10


def test_generate_refuses_a_user_without_2fa(member, clock):
    with pytest.raises(TwoFactorDisabled):
        backup_codes.generate(member, PASSWORD, ORIGIN)
    assert not BackupCode.objects.filter(user=member).exists()


def test_generate_is_audited_and_mailed(enrolled, mailoutbox, django_capture_on_commit_callbacks):
    """NIST SP 800-63B-4 §4.2.1.1: issuing new recovery codes notifies the user."""
    with django_capture_on_commit_callbacks(execute=True):
        backup_codes.generate(enrolled.user, PASSWORD, ORIGIN)
    event = SecurityEvent.objects.filter(user=enrolled.user, type="backup_codes_generated").latest("pk")
    assert (event.ip, event.user_agent, event.actor_id) == (ORIGIN.ip, ORIGIN.user_agent, enrolled.user.pk)
    assert len(mailoutbox) == 1 and "New backup codes" in mailoutbox[0].subject


def test_remaining_counts_only_unused_codes(enrolled):
    for used, code in enumerate(enrolled.codes[:4], start=1):
        signin.check_code(enrolled.user.pk, code, ORIGIN)
        assert backup_codes.remaining(enrolled.user) == 10 - used


def test_few_codes_left_is_low(settings):
    settings.TWOSTEP_BACKUP_CODES_LOW = 3
    assert [backup_codes.is_low(n) for n in (0, 3, 4, 10)] == [True, True, False, False]


def test_spend_marks_exactly_one_code(enrolled, clock):
    from twostep.core import clock as core_clock

    enrolled.user.refresh_from_db()  # spend() reads the salt of the row it is given
    assert backup_codes.spend(enrolled.user, enrolled.codes[5].upper(), core_clock.utcnow()) is True
    with pytest.raises(backup_codes.CodeAlreadyUsed):
        backup_codes.spend(enrolled.user, enrolled.codes[5], core_clock.utcnow())
    assert BackupCode.objects.filter(user=enrolled.user, used_at__isnull=False).count() == 1
