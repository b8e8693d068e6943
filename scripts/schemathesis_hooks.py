"""schemathesis hooks for scripts/schemathesis.

The CSRF pair is the `csrftoken` cookie and the X-CSRFToken header (schemathesis.toml sends
the header). The cookie goes on each case here, not in a global Cookie header, so that the
session cookie stays schemathesis's auth alone: a case it sends without auth carries no session.
"""

import os

import schemathesis


@schemathesis.hook
def before_call(context, case, **kwargs):
    case.cookies = {**(case.cookies or {}), "csrftoken": os.environ["TWOSTEP_ST_CSRF"]}
