"""The account admin's security log over the API: filtered, paged, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema
from pydantic import AfterValidator, StringConstraints

from ..services import activity
from ..services.errors import InvalidInput, NotAccountAdmin
from .errors import NotAuthenticated, SetupRequired
from .schemas import EventOut, spec, text
from .security import SignedIn

router = Router(tags=["account admin"], auth=SignedIn())


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_("must be a date or a date and time in ISO 8601, e.g. 2026-01-31 or "
                           "2026-01-31T08:00:00Z.")) from None


Moment = Annotated[str, StringConstraints(max_length=40), AfterValidator(_moment)]


class AccountEventsQuery(Schema):
    user: text(150) = Field("", description="Only this user's events (a login of the account).")
    type: text(40) = Field("", description="Only events of this type, e.g. `sign_in`.")
    since: Moment | None = Field(None, description="From this time on, included (ISO 8601 date or "
                                                   "date and time; without a zone: UTC).")
    until: Moment | None = Field(None, description="Before this time, excluded (ISO 8601 date or "
                                                   "date and time; without a zone: UTC).")
    cursor: int | None = Field(None, ge=1, le=activity.MAX_ID, description="`next` from the previous page.")
    limit: int = Field(activity.PAGE_SIZE, ge=1, le=activity.MAX_PAGE)


class AccountEventOut(EventOut):
    user: str | None = Field(description="Whose event it is: a login, or null (e.g. a wrong login).")


class AccountEventsOut(Schema):
    events: list[AccountEventOut]
    next: int | None = Field(description="Pass as `cursor` for older events; null when none are left.")


def event_out(event) -> dict:
    """One event as the API shows it (the `user` item only matters to the account's log)."""
    return {
        "id": event.pk, "type": event.type, "description": activity.describe(event), "at": event.at,
        "ip": event.ip, "user_agent": event.user_agent, "actor": event.actor_label or None,
        "user": event.user.login if event.user is not None else None,
    }


@router.get("/security-events",
            **spec(AccountEventsOut, NotAuthenticated, NotAccountAdmin, SetupRequired, InvalidInput))
def security_events(request, params: Query[AccountEventsQuery]):
    """List the security events of the admin's own account, newest first, a page at a time.

    A `user` of another account matches nothing. `since` must come before `until`; an unknown
    `type` is 422 `invalid_input`.
    """
    filters = activity.make_filters(login=params.user, type=params.type, since=params.since,
                                    until=params.until)
    events, next_cursor = activity.account_events(request.auth, filters, before=params.cursor,
                                                  limit=params.limit)
    return {"events": [event_out(e) for e in events], "next": next_cursor}
