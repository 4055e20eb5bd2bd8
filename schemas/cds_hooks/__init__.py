"""CDS Hooks 2.0 request and response shapes (https://cds-hooks.hl7.org/2.0/); the card a
call answers is built by ``schemas.cds_hooks.cards``.

Requests may carry fields this service does not use (extensions, fhirAuthorization): they are
let through, as the specification asks of services.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from schemas.fields import StrictString

OUTCOMES = ("accepted", "overridden")
INDICATORS = ("info", "warning", "critical")


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


class PatientViewContextSchema(_Open):
    userId = StrictString(required=True, metadata={"description": "Who opened the chart."})
    patientId = StrictString(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The FHIR id of the patient whose chart is open."},
    )
    encounterId = StrictString(metadata={"description": "The current encounter, if any."})


class HookRequestSchema(_Open):
    hook = StrictString(
        required=True,
        validate=validate.Equal("patient-view", error="This service answers patient-view."),
        metadata={"description": "The hook that fired: patient-view."},
    )
    hookInstance = StrictString(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "A UUID for this call."},
    )
    fhirServer = fields.Url(
        require_tld=False,
        # OpenAPI's format for an absolute address is uri; apispec writes url, which JSON
        # Schema does not define and client generators do not know.
        metadata={"description": "The client's FHIR base URL.", "format": "uri"},
    )
    fhirAuthorization = fields.Dict(
        metadata={"description": "Not used: this service never calls the client's FHIR server."}
    )
    context = fields.Nested(
        PatientViewContextSchema, required=True, metadata={"description": "Hook context."}
    )
    prefetch = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        metadata={
            "description": "Prefetched FHIR data: `intake` (the patient's latest "
            "QuestionnaireResponse to GET /v1/questionnaire, or a searchset Bundle of them) "
            "and `patient` (the Patient, for its identifiers)."
        },
    )


class CodingSchema(_Open):
    system = StrictString(metadata={"description": "Code system."})
    code = StrictString(required=True, metadata={"description": "Code."})
    display = StrictString(metadata={"description": "Display text."})


class OverrideReasonSchema(_Open):
    reason = fields.Nested(CodingSchema, metadata={"description": "Why the card was overridden."})
    userComment = StrictString(metadata={"description": "The user's own words."})


class AcceptedSuggestionSchema(_Open):
    id = StrictString(required=True, metadata={"description": "The suggestion's uuid."})


class FeedbackItemSchema(_Open):
    card = StrictString(
        required=True,
        validate=validate.Length(min=1, max=36),
        metadata={"description": "The uuid of the card."},
    )
    outcome = StrictString(
        required=True, validate=validate.OneOf(OUTCOMES), metadata={"description": "Outcome."}
    )
    acceptedSuggestions = fields.List(
        fields.Nested(AcceptedSuggestionSchema),
        metadata={"description": "The suggestions accepted (required when accepted)."},
    )
    overrideReason = fields.Nested(
        OverrideReasonSchema, metadata={"description": "Why it was overridden."}
    )
    outcomeTimestamp = fields.AwareDateTime(
        required=True, metadata={"description": "When the user acted (ISO 8601 with zone)."}
    )

    @validates_schema
    def accepted_names_its_suggestions(self, data, **kwargs):
        if data.get("outcome") == "accepted" and not data.get("acceptedSuggestions"):
            raise ValidationError(
                "Required when the outcome is accepted.", field_name="acceptedSuggestions"
            )


class FeedbackRequestSchema(_Open):
    feedback = fields.List(
        fields.Nested(FeedbackItemSchema),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "What the users did with the cards."},
    )
