from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("oidc/", include("mozilla_django_oidc.urls")),  # authenticate/, callback/, logout/
]
