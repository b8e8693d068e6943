from django.contrib import admin
from django.urls import include, path

from twostep.api import api
from twostep.web.views.admin_site import protect_admin_site

protect_admin_site(admin.site)

# A lost database answers 503 (JSON under /api/) instead of a 500 page.
handler500 = "twostep.web.views.errors.server_error"

urlpatterns = [
    path("api/v1/", api.urls),
    path("django-admin/", admin.site.urls),
    path("", include("twostep.oidc.urls")),  # OpenID Connect: /.well-known/openid-configuration, /oauth/…
    path("", include("twostep.web.urls")),
]
