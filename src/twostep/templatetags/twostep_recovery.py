"""Template tags for the admin's users page: enrolment count, deadline policy, pending approvals."""

from django import template

from ..services import accounts, recovery_passes

register = template.Library()


@register.simple_tag(takes_context=True)
def recovery_admin_panel(context):
    """Return what the users page's recovery panel shows to the signed-in account admin."""
    from ..web.views.recovery_admin import DeadlineForm

    admin = context["request"].user
    enrolled, total = accounts.enrolment_counts(admin)
    account = admin.account
    form = context.get("deadline_form") or DeadlineForm(initial={"require_two_factor_from": account.require_two_factor_from,
                                 "require_second_admin": account.require_second_admin})
    return {"enrolled": enrolled, "total": total, "form": form, "me": admin.pk,
            "requests": recovery_passes.pending_requests(admin)}
