"""Django's authentication backend for twostep users: case-insensitive login, active only."""

from django.contrib.auth.backends import ModelBackend


class LoginBackend(ModelBackend):
    """Check a login and password; the second factor is the sign-in service's business."""

    def user_can_authenticate(self, user):
        return user.is_active
