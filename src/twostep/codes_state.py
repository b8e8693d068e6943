"""A new set of backup codes kept in the session that made it, until the person saves it.

The set is sealed (`backup_codes.seal_for_session`) and handed back only while it is the user's
current set, unsaved and recent (`backup_codes.unsealed`); signing out empties the session and
forgets it with everything else. The pages say `codes_state.keep(request, …)` and never touch the
session key themselves, as `signin_state` keeps the sign-in's.
"""

from __future__ import annotations

from .services.factors import backup_codes
from .services.factors.backup_codes import NewCodes

UNSAVED = "twostep_unsaved_codes"  # session key: {"sealed": token, "first_time": bool}


def keep(request, user, new: NewCodes, *, first_time: bool) -> None:
    """Keep `new` for this session to show until it is saved (`first_time`: 2FA just went on)."""
    request.session[UNSAVED] = {"sealed": backup_codes.seal_for_session(user, new), "first_time": first_time}


def unsaved(request) -> NewCodes | None:
    """Return the set this session made and may still show, or None (and forget a stale copy)."""
    kept = request.session.get(UNSAVED)
    if not isinstance(kept, dict):
        return None
    new = backup_codes.unsealed(request.user, kept.get("sealed"))
    if new is None:
        request.session.pop(UNSAVED, None)
    return new


def first_time(request) -> bool:
    """Tell whether the kept set came with switching two-factor authentication on."""
    kept = request.session.get(UNSAVED)
    return bool(kept.get("first_time")) if isinstance(kept, dict) else False


def forget(request) -> bool:
    """Stop showing the kept set (it was saved); return whether it came with 2FA going on."""
    kept = request.session.pop(UNSAVED, None)
    return bool(kept.get("first_time")) if isinstance(kept, dict) else False
