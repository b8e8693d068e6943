from django.contrib.auth.decorators import login_required
from django.http import JsonResponse


@login_required
def me(request):
    """The protected JSON page the benchmark's fifth request reads (twostep's /api/v1/me)."""
    user = request.user
    return JsonResponse({"id": user.pk, "username": user.username, "email": user.email})
