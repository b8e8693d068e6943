"""The addresses for sessions and remembered browsers (included in the `web` namespace)."""

from django.urls import path

from .views import sessions

urlpatterns = [
    path("security/sessions/<int:session_id>/end", sessions.end_session, name="end_session"),
    path("security/sessions/end-others", sessions.end_other_sessions, name="end_other_sessions"),
    path("security/browsers/<int:browser_id>/forget", sessions.forget_browser, name="forget_browser"),
    path("security/browsers/forget", sessions.forget_browsers, name="forget_browsers"),
]
