"""The account admin's security log over the API: filtered, paged, newest first."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema
from pydantic import AfterValidator, StringConstraints, WithJsonSchema

from ..services import activity
from ..services.audit import Type
from ..services.errors import InvalidInput, NotAccountAdmin
from .errors import NotAuthenticated, SetupRequired
from .schemas import EventOut, QuerySchema, spec, text
from .security import SignedIn

router = Router(tags=["account admin"], auth=SignedIn())


# What `since` and `until` take, and the schema says: a date, an RFC 3339 date and time, or a
# date and time without a zone (read as UTC). Nothing else that datetime.fromisoformat would
# also read ("20260131", "2026-W05"), so a client keeping to the schema is never refused.
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATE_TIME = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
_YEAR, _MONTH = r"(?:000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})", r"(?:0[1-9]|1[0-2])"
_DAY, _HOUR = r"(?:0[1-9]|[12]\d|3[01])", r"(?:[01]\d|2[0-3])"
_LOCAL = rf"{_YEAR}-{_MONTH}-{_DAY}T{_HOUR}:[0-5]\d(?::[0-5]\d(?:\.\d{{1,6}})?)?"
_MOMENT = re.compile(rf"(?:{_DATE}|{_DATE_TIME}|{_LOCAL})")
_MOMENT_MAX = 40
_NOT_A_MOMENT = _("must be a date or a date and time in ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00:00Z.")


def _moment(value: str) -> datetime:
    if not _MOMENT.fullmatch(value):
        raise ValueError(_NOT_A_MOMENT)
    value = value.upper()
    if value[16:19] == ":60":  # a leap second (RFC 3339): the last instant of the second before
        value = f"{value[:17]}59.999999{value[19:].lstrip('.0123456789')}"
    if "." in value:  # datetime takes microseconds: RFC 3339 allows any number of digits
        head, tail = value.split(".", 1)
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}"
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # a day the month lacks, a leap second
        raise ValueError(_NOT_A_MOMENT) from None


Moment = Annotated[
    str, StringConstraints(max_length=_MOMENT_MAX), AfterValidator(_moment),
    WithJsonSchema({"anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time", "maxLength": _MOMENT_MAX},
        {"type": "string", "pattern": f"^{_LOCAL}$"},
    ]}),
]
EVENT_TYPES = ["", *Type.values]


def _event_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(_("must be one of the event types, e.g. sign_in."))
    return value


EventType = Annotated[str, StringConstraints(max_length=40), AfterValidator(_event_type),
                      WithJsonSchema({"type": "string", "enum": EVENT_TYPES})]


class AccountEventsQuery(QuerySchema):
    user: text(150) = Field("", description="Only this user's events (a login of the account).")
    type: EventType = Field("", description="Only events of this type, e.g. `sign_in`; empty: all.")
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
