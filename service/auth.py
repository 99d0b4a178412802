"""Bearer-key authentication as a FastAPI dependency: every ``/v1`` route gets the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError
from .keys import KeyFile, KeyFileError, hash_key, parse_dev_keys

_bearer = HTTPBearer(auto_error=False, description="API key from `diarize keys add TENANT`.")


class Authenticator:
    """Maps API keys to tenants from the keys file and ``DIARIZE_API_KEYS``."""

    def __init__(self, key_file: KeyFile, dev_keys: str | None = None) -> None:
        self.key_file = key_file
        self.dev = parse_dev_keys(dev_keys)

    def tenant(self, key: str) -> str | None:
        tenant = self.dev.get(hash_key(key))
        if tenant:
            return tenant
        try:
            return self.key_file.lookup(key)
        except (KeyFileError, OSError):
            return None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def current_tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The tenant of the request's API key; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    tenant = request.app.state.auth.tenant(credentials.credentials)
    if tenant is None:
        raise _unauthorized("invalid API key")
    return tenant


Tenant = Annotated[str, Depends(current_tenant)]
