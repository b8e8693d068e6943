"""Security activity pages: the user's own events, the account admin's log and its CSV export."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from ...core import clock
from ...services import activity
from ...services.errors import InvalidInput, NotAccountAdmin
from .common import signed_in_required


class CursorForm(forms.Form):
    before = forms.IntegerField(min_value=1, max_value=activity.MAX_ID, required=False,
                                widget=forms.HiddenInput)


class FilterForm(CursorForm):
    """The admin's filters; the dates are whole days in the reader's time zone, both included."""

    user = forms.CharField(label=_("User (login)"), max_length=150, required=False,
                           widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}))
    type = forms.ChoiceField(label=_("Event"), required=False,
                             choices=[("", _("All events"))] + activity.event_types())
    since = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(label=_("To"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date must not be before the start date."))
        return data

    def filters(self) -> activity.Filters:
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        since = until = None
        if data.get("since"):
            since = datetime.combine(data["since"], time.min, tzinfo=zone)
        if data.get("until") and data["until"] < date.max:  # the last day has no day after it
            until = datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone)
        return activity.make_filters(login=data.get("user", ""), type=data.get("type", ""),
                                     since=since, until=until)

    def query(self) -> dict:
        """The valid filters as query parameters, for the next page and the CSV link."""
        data = self.cleaned_data
        pairs = {"user": data.get("user", ""), "type": data.get("type", ""),
                 "since": data["since"].isoformat() if data.get("since") else "",
                 "until": data["until"].isoformat() if data.get("until") else ""}
        return {k: v for k, v in pairs.items() if v}


def _rows(events):
    return [(event, activity.describe(event)) for event in events]


@require_safe
@signed_in_required
def own(request):
    """The user's own security events, a page at a time."""
    cursor = CursorForm(request.GET)
    before = cursor.cleaned_data["before"] if cursor.is_valid() else None
    events, next_cursor = activity.own_events(request.user, before=before)
    return render(request, "twostep/activity/own.html", {
        "rows": _rows(events),
        "next_cursor": next_cursor,
        "paged": bool(before),
    })


def _admin_filters(request):
    if not request.user.is_account_admin:
        raise PermissionDenied(NotAccountAdmin.default_message)
    form = FilterForm(request.GET)
    if not form.is_valid():
        return form, None
    try:
        return form, form.filters()
    except InvalidInput as error:
        form.add_error(None, error.message)
        return form, None


@require_safe
@signed_in_required
def account(request):
    """The account's security log for its admin, with filters and paging."""
    form, filters = _admin_filters(request)
    events, next_cursor, query = [], None, {}
    before = None
    if filters is not None:
        before = form.cleaned_data.get("before")
        query = form.query()
        try:
            events, next_cursor = activity.account_events(request.user, filters, before=before)
        except NotAccountAdmin as error:
            raise PermissionDenied(error.message) from None
    return render(request, "twostep/activity/account.html", {
        "form": form,
        "rows": _rows(events),
        "next_cursor": next_cursor,
        "paged": bool(before),
        "query": urlencode(query),
        "next_query": urlencode({**query, "before": next_cursor}) if next_cursor else "",
        "account_name": request.user.account.name,
    }, status=200 if filters is not None else 400)


@require_safe
@signed_in_required
def account_csv(request):
    """The account's filtered log as a CSV file, streamed row by row."""
    form, filters = _admin_filters(request)
    if filters is None:
        return render(request, "twostep/activity/account.html", {
            "form": form, "rows": [], "account_name": request.user.account.name,
        }, status=400)
    try:
        lines = activity.export_csv(request.user, filters)
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = clock.utcnow().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="security-activity-{stamp}.csv"'
    return response
