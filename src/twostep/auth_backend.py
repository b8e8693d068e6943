"""Django's authentication backend for twostep users: case-insensitive login, active only."""

from django.contrib.auth.backends import ModelBackend

from .models import User


class LoginBackend(ModelBackend):
    """Check a login and password; the second factor is the sign-in service's business."""

    def user_can_authenticate(self, user):
        return user.is_active

    def get_user(self, user_id):
        """The signed-in user of a request, with its account: the stage and policy checks of
        almost every signed-in request read the account, which would otherwise be one more query."""
        user = User.objects.with_account(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
