"""Who calls a CDS service: the request's bearer token verified (``service.cds.tokens``), its
jti used once, the failed attempts of its address counted, and the principal its client's
tenant."""

from __future__ import annotations

from flask import g, request

from service.auth import bearer_token, client_address
from service.cds.tokens import CdsAuthenticationError, CdsCaller
from service.state import state
from service.storage import Principal


class CdsFailureBudgetSpent(Exception):
    """Too many failed authentications from one address: a token that verifies with keys
    already fetched is still accepted; others answer 429, and fetch nothing."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(retry_after)


def authenticate(service_id: str) -> CdsCaller:
    """The caller of ``service_id``, its tenant made the request's principal; raises
    CdsAuthenticationError (a 401) or CdsFailureBudgetSpent (a 429)."""
    budget = state().cds_budget
    address = client_address(request.remote_addr)
    over_budget = budget is not None and budget.exhausted(address)
    try:
        caller = _verify(service_id, may_fetch=not over_budget)
    except CdsAuthenticationError:
        if budget is None:
            raise
        budget.spend(address)
        if over_budget:
            raise CdsFailureBudgetSpent(budget.retry_after(address)) from None
        raise
    tenant_id = state().storage.cds.tenant_id(caller.client.tenant)
    # Records made by a CDS client belong to its tenant; no API key is involved.
    g.principal = Principal(key_id=None, tenant_id=tenant_id, tenant=caller.client.tenant)
    return caller


def _verify(service_id: str, may_fetch: bool) -> CdsCaller:
    token = bearer_token()
    if not token:
        raise CdsAuthenticationError("Send the CDS client's JWT: Authorization: Bearer <jwt>.")
    caller: CdsCaller
    caller, expires = state().cds_verifier.verify(token, service_id, may_fetch)
    if not state().storage.cds.use_token(caller.client.issuer, caller.jti, expires):
        raise CdsAuthenticationError("This token (jti) has been used before.")
    return caller
