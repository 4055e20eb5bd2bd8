"""FHIR resources that are not records: the symptom intake Questionnaire."""

from __future__ import annotations

from service import response_examples
from service.fhir_intake import intake_questionnaire
from service.response_examples import fhir_doc_with_example
from service.state import state
from service.web import (
    V1_ERRORS,
    Blueprint,
    fhir_response,
    problem_responses,
    require_fhir,
)

blp = Blueprint(
    "fhir",
    __name__,
    url_prefix="/v1",
    description="FHIR R4: the symptom intake as a Questionnaire. Stored records are also "
    "served as FHIR (Accept: application/fhir+json), and POST /v1/assess reads "
    "QuestionnaireResponses.",
)


@blp.route("/questionnaire")
@blp.doc(
    **fhir_doc_with_example(
        "Questionnaire", "The symptom intake Questionnaire.", response_examples.QUESTIONNAIRE
    )
)
@problem_responses(blp, *V1_ERRORS)
def get_questionnaire():
    """The symptom intake as a FHIR Questionnaire

    One group per report section and one question per field of `POST /v1/assess`, with
    `linkId` = the field path (`signs.numbness`), the field's type and answer options, the
    red-flag questions marked `required`, and `enableWhen` where a question only follows
    another. Send a `QuestionnaireResponse` to it to `POST /v1/assess` with
    `Content-Type: application/fhir+json`: the result is the same as for the JSON report.
    """
    require_fhir()
    return fhir_response(intake_questionnaire(state().rules))
