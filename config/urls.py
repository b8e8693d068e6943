from django.contrib import admin
from django.urls import include, path

from twostep.api import api
from twostep.web.views.admin_site import protect_admin_site

protect_admin_site(admin.site)

urlpatterns = [
    path("api/v1/", api.urls),
    path("django-admin/", admin.site.urls),
    path("", include("twostep.web.urls")),
]
