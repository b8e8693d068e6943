"""Template tags for the admin's users page: enrolment count and the requests waiting for approval."""

from django import template

from ..services import accounts, recovery_passes

register = template.Library()


@register.simple_tag(takes_context=True)
def recovery_admin_panel(context):
    """Return what the users page's recovery panel shows to the signed-in account admin.

    Each waiting request comes with its own approval form: the one the admin just sent, bound
    with its errors and input, or a fresh one asking for a code unless the sign-in is fresh.
    """
    from ..web.views.recovery_admin import ApproveForm

    admin = context["request"].user
    enrolled, total = accounts.enrolment_counts(admin)
    sent = context.get("approve_form")
    need_code = not context.get("step_up_fresh")
    requests = [
        {"request": pending,
         "form": sent if sent is not None and sent.request_id == pending.pk
         else ApproveForm(request_id=pending.pk, need_code=need_code)}
        for pending in recovery_passes.pending_requests(admin)
    ]
    return {"enrolled": enrolled, "total": total, "me": admin.pk, "requests": requests}
