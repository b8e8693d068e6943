"""One function per user action; the only layer that opens transactions.

Web views, API handlers and CLI commands call these and render the result; every rule of the
two-factor domain is decided here and nowhere else.
"""
