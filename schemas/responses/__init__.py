"""Response schemas.

The rules core already returns JSON-ready dicts, and the service writes them out directly (a
marshmallow dump of a large nested response would cost more than the whole evaluation). These
schemas are the documented contract: they produce the OpenAPI description, and the test suite
checks real responses against that description (schemathesis' response conformance check), so
the documentation cannot drift from what is sent.

The schemas are grouped by what they describe, in the modules of this package; this front door
re-exports them, and importers use ``schemas.responses``.
"""

from __future__ import annotations

from rules.model import PLAN_STATUSES
from schemas.responses.assessment import (
    PRESCRIPTION_BASES,
    AssessmentSchema,
    EscalationSchema,
    PrescriptionSchema,
    TraceEntrySchema,
    TraceSchema,
)
from schemas.responses.catalogue import (
    ApplicabilitySchema,
    ClassificationCodeSchema,
    CodeFamilySchema,
    ConditionCodingSchema,
    ConditionListSchema,
    ConditionSchema,
    ExerciseListSchema,
    ExerciseSchema,
    ParameterSchema,
    RuleSetDocumentSchema,
    RulesVersionListSchema,
    RulesVersionSchema,
)
from schemas.responses.common import (
    LEVEL,
    TIME_FRAMES,
    RuleReasonSchema,
    SourceSchema,
)
from schemas.responses.health import (
    HealthSchema,
    ReadinessChecksSchema,
    ReadinessSchema,
)
from schemas.responses.plan import (
    INTENSITIES,
    DoseSchema,
    ExcludedExerciseSchema,
    ExercisePlanSchema,
    PlanItemSchema,
    RecommendationSchema,
    SafetyNoteSchema,
)
from schemas.responses.problem import (
    ProblemSchema,
)
from schemas.responses.records import (
    AssessmentLinksSchema,
    AssessmentPageSchema,
    AssessmentRecordSchema,
    AssessmentSummarySchema,
    PageLinksSchema,
    PrescriptionLinksSchema,
    PrescriptionRecordSchema,
    RecordFieldsSchema,
    SubjectOutSchema,
)
from schemas.responses.triage import (
    LIKELIHOODS,
    PRIORITIES,
    EvidenceSchema,
    LikelyCauseSchema,
    MissingInformationSchema,
    RedFlagSchema,
    TimeFrameSchema,
    TriageSchema,
)

__all__ = [
    "INTENSITIES",
    "LEVEL",
    "LIKELIHOODS",
    "PLAN_STATUSES",
    "PRESCRIPTION_BASES",
    "PRIORITIES",
    "TIME_FRAMES",
    "ApplicabilitySchema",
    "AssessmentLinksSchema",
    "AssessmentPageSchema",
    "AssessmentRecordSchema",
    "AssessmentSchema",
    "AssessmentSummarySchema",
    "ClassificationCodeSchema",
    "CodeFamilySchema",
    "ConditionCodingSchema",
    "ConditionListSchema",
    "ConditionSchema",
    "DoseSchema",
    "EscalationSchema",
    "EvidenceSchema",
    "ExcludedExerciseSchema",
    "ExerciseListSchema",
    "ExercisePlanSchema",
    "ExerciseSchema",
    "HealthSchema",
    "LikelyCauseSchema",
    "MissingInformationSchema",
    "PageLinksSchema",
    "ParameterSchema",
    "PlanItemSchema",
    "PrescriptionLinksSchema",
    "PrescriptionRecordSchema",
    "PrescriptionSchema",
    "ProblemSchema",
    "ReadinessChecksSchema",
    "ReadinessSchema",
    "RecommendationSchema",
    "RecordFieldsSchema",
    "RedFlagSchema",
    "RuleReasonSchema",
    "RuleSetDocumentSchema",
    "RulesVersionListSchema",
    "RulesVersionSchema",
    "SafetyNoteSchema",
    "SourceSchema",
    "SubjectOutSchema",
    "TimeFrameSchema",
    "TraceEntrySchema",
    "TraceSchema",
    "TriageSchema",
]
