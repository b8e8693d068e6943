from twostep.services import verification
from twostep.services.errors import InvalidCode

from ..conftest import ORIGIN


def test_enrolled_user_signs_in_with_app_code_once(enrolled):
    code = enrolled.code()
    assert verification.check_code(enrolled.user.pk, code, ORIGIN, method="totp").method == "totp"
    try:
        verification.check_code(enrolled.user.pk, code, ORIGIN, method="totp")
    except InvalidCode:
        pass
    else:
        raise AssertionError("a replayed code was accepted")
