"""CDS Hooks authentication: the CDS client's signed JWT (CDS Hooks 2.0, "Trusting CDS
Clients").

A client is trusted when its issuer is on the configured allow-list. Its token must be signed
with ES384 or RS384 by a key from that client's JWK Set (a file, or a URL fetched in the
background and cached: service.cds.jwks),
name this service endpoint as its audience, be at most five minutes from expiry when issued,
and carry a jti that was never used before (kept in the database until the token expires, so
the check holds across workers).

No Flask here: ``service.cds.authentication`` applies this to a request.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from service.cds.jwks import JwkSetUnavailable, RemoteJwkSet

ALGORITHMS = ("ES384", "RS384")
# CDS Hooks 2.0, "Trusting CDS Clients" (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients):
# a token's exp is at most five minutes after it is issued.
MAX_LIFETIME_SECONDS = 300


class CdsAuthenticationError(Exception):
    """Why a token is refused (said in the 401's detail; the token itself is never logged)."""


@dataclass(frozen=True)
class CdsClient:
    issuer: str
    tenant: str
    jwks_file: Path | None = None
    jwks_url: str | None = None


@dataclass(frozen=True)
class CdsCaller:
    client: CdsClient
    jti: str


def jwks_url_problem(url: str, allow_local: bool = False) -> str | None:
    """Why a JWK Set address is refused, or None. The address is parsed, not prefix-matched
    (http://localhost.evil.example/ is not local), must be https, and may not name a loopback,
    link-local or private address (the service must not be made to call its own network)
    unless ``allow_local`` (for tests, which serve keys on loopback over http)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "has no host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    local = (
        host == "localhost"
        or host.endswith(".localhost")
        or (
            address is not None
            and (address.is_loopback or address.is_link_local or address.is_private)
        )
    )
    if local:
        return None if allow_local else "names a local or private address"
    if parts.scheme != "https":
        return "must be https"
    return None


def load_clients(path: str | None, allow_local_jwks: bool = False) -> dict[str, CdsClient]:
    """The trusted clients by issuer. A defective file stops the start-up, naming it."""
    if not path:
        return {}
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RuntimeError(f"{file}: cannot read the CDS clients file: {error}") from None
    clients: dict[str, CdsClient] = {}
    entries = raw.get("clients") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise RuntimeError(f'{file}: expected {{"clients": [...]}}')
    for index, entry in enumerate(entries):
        where = f"{file}: clients[{index}]"
        if not isinstance(entry, dict) or set(entry) - {
            "issuer",
            "tenant",
            "jwks_file",
            "jwks_url",
        }:
            raise RuntimeError(f"{where}: keys are issuer, tenant and jwks_file or jwks_url")
        if not all(isinstance(entry.get(k), str) and entry[k] for k in ("issuer", "tenant")):
            raise RuntimeError(f"{where}: issuer and tenant are required")
        if ("jwks_file" in entry) == ("jwks_url" in entry):
            raise RuntimeError(f"{where}: give exactly one of jwks_file and jwks_url")
        jwks_file = None
        if "jwks_file" in entry:
            jwks_file = Path(entry["jwks_file"])
            if not jwks_file.is_absolute():
                jwks_file = file.parent / jwks_file
        else:
            problem = jwks_url_problem(entry["jwks_url"], allow_local_jwks)
            if problem:
                raise RuntimeError(f"{where}: jwks_url {problem}")
        if entry["issuer"] in clients:
            raise RuntimeError(f"{where}: issuer {entry['issuer']!r} is listed twice")
        clients[entry["issuer"]] = CdsClient(
            entry["issuer"], entry["tenant"], jwks_file, entry.get("jwks_url")
        )
    return clients


class TokenVerifier:
    def __init__(self, clients: dict[str, CdsClient], base_url: str | None, leeway: float):
        self._clients = clients
        self._base_url = base_url
        self._leeway = leeway
        # One fetcher per URL, made here so that forged tokens cannot add entries.
        self._remote_sets = {
            client.jwks_url: RemoteJwkSet(client.jwks_url)
            for client in clients.values()
            if client.jwks_url
        }
        # Key files are read here, at start-up, not per call: an unreadable one stops the
        # service naming it. A rotated key file takes a restart (a URL is re-fetched).
        self._file_keys: dict[str, list[jwt.PyJWK]] = {}
        for client in clients.values():
            if client.jwks_file is not None:
                try:
                    self._file_keys[client.issuer] = jwt.PyJWKSet.from_json(
                        client.jwks_file.read_text(encoding="utf-8")
                    ).keys
                except (OSError, ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as error:
                    raise RuntimeError(
                        f"{client.jwks_file}: cannot read the JWK Set of {client.issuer}: {error}"
                    ) from None

    @property
    def configured(self) -> bool:
        return bool(self._clients and self._base_url)

    def audience(self, service_id: str) -> str:
        return f"{self._base_url}/cds-services/{service_id}"

    def _key(self, client: CdsClient, kid: str | None, may_fetch: bool) -> Any:
        if client.jwks_url:
            try:
                keys = self._remote_sets[client.jwks_url].keys(kid, may_fetch=may_fetch)
            except JwkSetUnavailable:
                raise CdsAuthenticationError(
                    "The client's JWK Set cannot be fetched now; retry shortly."
                ) from None
        else:
            keys = self._file_keys[client.issuer]
        matching = [key for key in keys if kid is None or key.key_id == kid]
        if len(matching) != 1:
            raise CdsAuthenticationError("No single key of the client's JWK Set has this kid.")
        return matching[0].key

    def verify(
        self, token: str, service_id: str, may_fetch: bool = True
    ) -> tuple[CdsCaller, datetime]:
        """The caller, and when the token expires (to keep its jti until then). With
        ``may_fetch=False`` only JWK Sets already fetched are used."""
        if not self.configured:
            raise CdsAuthenticationError("No CDS client is configured for this service.")
        header, unverified = _unverified(token)
        client = self._clients.get(unverified.get("iss"))
        if client is None:
            raise CdsAuthenticationError("The token's issuer is not a trusted CDS client.")
        key = self._key(client, header.get("kid"), may_fetch)
        claims = self._verified_claims(token, key, header["alg"], client, service_id)
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS + self._leeway:
            raise CdsAuthenticationError("The token lives longer than five minutes.")
        if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 255:
            raise CdsAuthenticationError("The token's jti must be a string of 1-255 characters.")
        # The token is accepted until exp plus the leeway, so its use must be remembered at
        # least that long: forgetting it at exp would let it be replayed for the leeway.
        accepted_until = datetime.fromtimestamp(claims["exp"] + self._leeway, UTC)
        return CdsCaller(client, claims["jti"]), accepted_until

    def _verified_claims(
        self, token: str, key, algorithm: str, client: CdsClient, service_id: str
    ) -> dict[str, Any]:
        """The token's claims, once its signature, audience, issuer and times check out."""
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience(service_id),
                issuer=client.issuer,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidAudienceError:
            raise CdsAuthenticationError(
                f"The token's aud must be {self.audience(service_id)}."
            ) from None
        except jwt.ExpiredSignatureError:
            raise CdsAuthenticationError("The token has expired.") from None
        except jwt.InvalidSignatureError:
            raise CdsAuthenticationError("The token's signature does not verify.") from None
        except jwt.PyJWTError as error:
            raise CdsAuthenticationError(f"The token is not valid: {error}.") from None
        except (TypeError, ValueError):
            # PyJWT raises these when the alg names a key type other than the key's (an RSA
            # algorithm with an EC key): a forged or broken token, never a server error.
            raise CdsAuthenticationError(
                "The token's alg does not fit the key its kid names."
            ) from None


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, read before anything is checked (to find its client and
    key), with an algorithm this service accepts."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise CdsAuthenticationError("The bearer token is not a JWT.") from None
    if header.get("alg") not in ALGORITHMS:
        raise CdsAuthenticationError(f"The token must be signed with {' or '.join(ALGORITHMS)}.")
    return header, unverified
