"""The error summary every page with a form shows at its top (the GOV.UK pattern).

It lists each error of the page's bound forms, each a link to its field, so a person on a
phone sees at once what is wrong and reaches the field in one tap, however far down it is.
"""

from django import forms, template

register = template.Library()


def _forms_in(value):
    """Yield the forms a context value holds: a form, or forms in a list of dicts (table rows)."""
    if isinstance(value, forms.BaseForm):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, dict):
                for inner in item.values():
                    if isinstance(inner, forms.BaseForm):
                        yield inner


@register.simple_tag(takes_context=True)
def error_summary(context):
    """List the errors of every bound form in the page's context, in the order of their fields.

    Nothing at all when there are none, as on nearly every page shown: no template rendered.
    """
    errors = _errors(context)
    if not errors:
        return ""
    summary = context.template.engine.get_template("twostep/includes/error_summary.html")
    return summary.render(context.new({"errors": errors}))


def _errors(context) -> list[dict]:
    seen, errors = set(), []
    for value in context.flatten().values():
        for form in _forms_in(value):
            if id(form) in seen or not form.is_bound or not form.errors:
                continue
            seen.add(id(form))
            errors += [{"text": message, "target": ""} for message in form.non_field_errors()]
            for field in form:
                errors += [{"text": message, "target": field.id_for_label, "label": field.label}
                           for message in field.errors]
    return errors
