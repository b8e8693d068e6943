"""Show times in the reader's time zone: activated per request, deactivated after it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.utils import timezone

from ..services import time_zones


class TimeZoneMiddleware:
    """Activate the user's saved zone, else the browser's (its cookie), else the server's (UTC).

    Runs after AuthenticationMiddleware. `request.detect_time_zone` tells the page's script to
    read the browser's zone when nothing is known yet, so the next page shows local times.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = time_zones.zone_for(getattr(request, "user", None), request.COOKIES.get(time_zones.COOKIE))
        request.time_zone_name = name
        request.detect_time_zone = not name
        if name:
            timezone.activate(ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
