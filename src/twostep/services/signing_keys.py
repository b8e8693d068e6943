"""The ID-token signing keys: the JWKS that applications check ID tokens with, and rotation.

The keys themselves are kept by crypto.py (the only code that touches keys): given by settings,
or generated into the data dir on first need. A rotation puts a new key first; the old one
stays published until every ID token it signed has expired (OIDC_ID_TOKEN_SECONDS).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import crypto


def published() -> list[dict]:
    """The public keys, active first, as JWKs (RS256, use "sig", kid = the RFC 7638 thumbprint)."""
    return crypto.published_jwks()


@dataclass(frozen=True)
class Rotation:
    rotated: bool  # False: the keys come from settings, nothing was changed
    kid: str  # the key that signs from now on (the current one when not rotated)
    published: int  # how many keys the JWKS publishes now
    path: str = ""


def rotate() -> Rotation:
    """Make a new signing key active; the old ones stay in the JWKS until their tokens expire."""
    if crypto.signing_keys_given():
        keys = published()
        return Rotation(False, keys[0]["kid"], len(keys))
    path, _kept = crypto.rotate_signing_key()
    keys = published()
    return Rotation(True, keys[0]["kid"], len(keys), path)


def verification_keys():
    """Every published key as a jwcrypto JWKSet: an ID token (say, a logout's id_token_hint) signed
    before a rotation still verifies."""
    from jwcrypto import jwk
    from oauth2_provider.utils import jwk_from_pem

    active, inactive = crypto.signing_pems()
    keys = jwk.JWKSet()
    for pem in (active, *inactive):
        keys.add(jwk_from_pem(pem))
    return keys
