"""Security activity pages, included into the `web` namespace by web/urls.py."""

from django.urls import path

from .views import activity

urlpatterns = [
    path("security/activity", activity.own, name="activity"),
    path("account/activity", activity.account, name="account_activity"),
    path("account/activity.csv", activity.account_csv, name="account_activity_csv"),
]
