from django.http import JsonResponse
from django.urls import path

app_name = "web"


def healthz(request):
    return JsonResponse({"status": "ok"})


def login(request):  # replaced by the real page
    return JsonResponse({})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login", login, name="login"),
]
