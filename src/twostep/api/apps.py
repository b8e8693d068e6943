"""Apps with access: the applications that sign the user in through twostep (OpenID Connect)."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Router, Schema

from ..http import origin
from ..services import oidc
from ..services.errors import NotFound
from .errors import NotAuthenticated, SetupRequired
from .schemas import spec
from .security import SignedIn

router = Router(tags=["apps"], auth=SignedIn())


class AppOut(Schema):
    client_id: str = Field(description="The application's client id.")
    name: str
    granted_at: datetime = Field(description="When the user first let it sign them in.")
    last_used_at: datetime | None = Field(description="When it last received a token.")
    scopes: list[str] = Field(description='What it may learn: "openid", "profile", "email", "offline_access".')


class AppsOut(Schema):
    apps: list[AppOut]


class RevokedOut(Schema):
    revoked: AppOut


def _row(app: oidc.AppAccess) -> dict:
    return {"client_id": app.client_id, "name": app.name, "granted_at": app.granted_at,
            "last_used_at": app.last_used_at, "scopes": list(app.scopes)}


@router.get("/apps", **spec(AppsOut, NotAuthenticated, SetupRequired))
def list_apps(request):
    """List the applications with access to the user's account, the newest first."""
    return {"apps": [_row(app) for app in oidc.apps_with_access(request.auth)]}


@router.delete("/apps/{client_id}", **spec(RevokedOut, NotAuthenticated, SetupRequired, NotFound, unsafe=True))
def revoke_app(request, client_id: str):
    """Take an application's access back: its tokens end and it must ask the user again.

    An application without access to this account is 404 `not_found`.
    """
    return {"revoked": _row(oidc.revoke_app(request.auth, client_id, origin(request)))}
