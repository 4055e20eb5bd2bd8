"""Content negotiation: whether a client speaks plain JSON or FHIR, and answers in its type.

A client that sent FHIR, asked for FHIR (Accept, or the ``_format`` query parameter), or called a
FHIR-only address gets FHIR back, its errors included (OperationOutcomes rather than problem
details).

As the FHIR R4 specification writes it (https://hl7.org/fhir/R4/http.html#mime-type and
#parameters): ``application/fhir+json`` and the older ``application/json+fhir`` are the same
media type; a ``fhirVersion`` parameter names the FHIR version, and only R4 (4.0, or 4.0.1 in
full) is served; ``_format`` overrides Accept. A FHIR request this service cannot serve (another
version, XML) is refused with a 406 (what it asked for) or a 415 (what it sent), in the problem
shape: an R4 OperationOutcome is exactly what such a client said it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from flask import current_app, g, has_request_context, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import NotAcceptable, UnsupportedMediaType
from werkzeug.http import parse_options_header

from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.fhir.outcome import operation_outcome
from service.web.bodies import LEGACY_FHIR_MEDIA_TYPE

RESPONSE_MEDIA_TYPES = ("application/json", FHIR_MEDIA_TYPE)
FHIR_JSON_MEDIA_TYPES = (FHIR_MEDIA_TYPE, LEGACY_FHIR_MEDIA_TYPE)
# The fhirVersion values of R4: its major.minor, and its one published release in full.
FHIR_VERSIONS = ("4.0", "4.0.1")
# What _format may say for JSON (the FHIR specification's own list, and the older media type).
FORMAT_JSON = ("json", "application/json", *FHIR_JSON_MEDIA_TYPES)
SERVED = (
    f"This service serves FHIR R4 as JSON only: fhirVersion {' or '.join(FHIR_VERSIONS)}, "
    "media type application/fhir+json (or application/json+fhir), _format=json."
)


@dataclass(frozen=True)
class Negotiation:
    """What the request asked for: FHIR or not, or something refused (status and detail)."""

    asks_fhir: bool
    refusal: tuple[int, str] | None = None


def negotiation() -> Negotiation:
    """This request's answer to "FHIR or plain JSON?", worked out once per request."""
    if "fhir_negotiation" not in g:
        g.fhir_negotiation = _negotiate()
    return g.fhir_negotiation


def _unserved_version(parameters: Mapping[str, str]) -> str | None:
    """The fhirVersion a media type's parameters name, if this service does not serve it."""
    version = parameters.get("fhirversion")
    return version if version is not None and version not in FHIR_VERSIONS else None


def _negotiate() -> Negotiation:
    if request.mimetype == FHIR_MEDIA_TYPE:
        version = _unserved_version(request.mimetype_params)
        if version is not None:
            detail = f"The body is FHIR with fhirVersion={version}, which is not read here."
            return Negotiation(False, (415, f"{detail} {SERVED}"))
    requested = request.args.get("_format")
    if requested is not None:
        return _by_format(requested)
    return _by_accept()


def _by_format(requested: str) -> Negotiation:
    mimetype, parameters = parse_options_header(requested)
    if mimetype.lower() not in FORMAT_JSON:
        return Negotiation(False, (406, f"_format={requested} is not served. {SERVED}"))
    version = _unserved_version(parameters)
    if version is not None:
        return Negotiation(False, (406, f"fhirVersion {version} is not served. {SERVED}"))
    return Negotiation(True)


def _by_accept() -> Negotiation:
    """Accept's entries, FHIR ones of another version left out: if that leaves nothing this
    service can answer in, the answer is 406."""
    acceptable: list[tuple[str, float]] = []
    refused: list[str] = []
    for value, quality in request.accept_mimetypes:
        mimetype, parameters = parse_options_header(value)
        mimetype = mimetype.lower()
        if mimetype in FHIR_JSON_MEDIA_TYPES:
            version = _unserved_version(parameters)
            if version is not None:
                refused.append(version)
                continue
            mimetype = FHIR_MEDIA_TYPE
        acceptable.append((mimetype, quality))
    best = MIMEAccept(acceptable).best_match(RESPONSE_MEDIA_TYPES)
    if best is None and refused:
        versions = ", ".join(refused)
        return Negotiation(False, (406, f"Accept asks for fhirVersion {versions}. {SERVED}"))
    return Negotiation(best == FHIR_MEDIA_TYPE)


def wants_fhir() -> bool:
    """Whether to answer this request at an address that serves JSON or FHIR with FHIR; a FHIR
    request this service cannot serve raises the 406 or 415 that says what it can."""
    _refuse_unservable(negotiation())
    return speaks_fhir()


def require_fhir() -> None:
    """At an address that serves only FHIR R4 JSON: refuse a request for anything else."""
    _refuse_unservable(negotiation())


def sends_fhir() -> bool:
    """Whether the body is FHIR JSON (either media type); FHIR of another version is a 415."""
    if request.mimetype != FHIR_MEDIA_TYPE:
        return False
    _refuse_unservable(negotiation())
    return True


def _refuse_unservable(negotiated: Negotiation) -> None:
    if negotiated.refusal is None:
        return
    status, detail = negotiated.refusal
    raise (NotAcceptable if status == 406 else UnsupportedMediaType)(description=detail)


def speaks_fhir() -> bool:
    """Whether this request's client speaks FHIR: it sent FHIR, asked for FHIR (Accept or
    _format), or called a FHIR-only address. Its errors are then OperationOutcomes, not problem
    details; unless it asked for a FHIR this service does not serve."""
    if not has_request_context():
        return False
    negotiated = negotiation()
    if negotiated.refusal is not None:
        return False
    path = request.path
    if path.endswith("/fhir") or path == "/v1/questionnaire":
        return True
    return request.mimetype == FHIR_MEDIA_TYPE or negotiated.asks_fhir


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    """Serialise with orjson: several times faster than the standard library on large bodies."""
    return json_bytes_response(orjson.dumps(payload), status, headers)


def json_bytes_response(
    content: bytes, status: int = 200, headers: Mapping[str, str] | None = None
):
    """JSON made already (a stored answer's bytes), sent as it is."""
    return current_app.response_class(
        content, status=status, headers=headers, mimetype="application/json"
    )


def fhir_response(resource: Any, status: int = 200, headers: Mapping[str, str] | None = None):
    return current_app.response_class(
        orjson.dumps(resource), status=status, headers=headers, mimetype=FHIR_MEDIA_TYPE
    )


def fhir_outcome(
    status: int,
    detail: str,
    errors: Mapping[str, list[str]] | None = None,
    *,
    linked_items: bool = False,
    headers: Mapping[str, str] | None = None,
):
    outcome = operation_outcome(
        status, detail, errors, getattr(g, "request_id", None), linked_items=linked_items
    )
    return fhir_response(outcome, status, headers)
