"""twostep: sign-in with a password and a second factor people can live with."""

__version__ = "1.0.0"
