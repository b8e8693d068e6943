"""Errors of the pure core."""


class MalformedCode(ValueError):
    """The text is not shaped like a code of the expected kind (not merely a wrong code)."""
