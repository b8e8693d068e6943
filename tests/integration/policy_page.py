"""The users page's policy form as a browser sends it: every field as shown, then the changes."""

from html.parser import HTMLParser


class _PolicyForm(HTMLParser):
    """Collect the named inputs of the form that posts to /account/policy, as a browser would."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.data: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("action") == "/account/policy"
        elif tag == "input" and self.inside and attrs.get("name"):
            if attrs.get("type") == "checkbox":
                if "checked" in attrs:
                    self.data[attrs["name"]] = attrs.get("value") or "on"
            else:
                self.data[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


def shown_policy(client) -> dict[str, str]:
    """The policy form's fields as the users page shows them (an unticked box is left out)."""
    parser = _PolicyForm()
    parser.feed(client.get("/account/users").content.decode())
    assert "csrfmiddlewaretoken" in parser.data, "the users page shows no policy form"
    parser.data.pop("csrfmiddlewaretoken")
    return parser.data


def save_policy(client, **changes):
    """Post the policy form as shown, with `changes` (a value of None unticks a box)."""
    data = shown_policy(client) | changes
    return client.post("/account/policy", {name: value for name, value in data.items() if value is not None})
