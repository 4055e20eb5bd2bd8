"""The adaptive interview: the next question about a report so far, one call at a time."""

from __future__ import annotations

from functools import cache

import orjson
from flask import request
from flask_smorest import abort

from rules import Evaluator
from rules.conditions import nest
from rules.interview import Interviewer, UnknownReportFields
from rules.loading import load_checklists
from schemas.fhir import FHIR_MEDIA_TYPE
from schemas.fhir.adaptive import (
    AdaptiveFormError,
    first_response,
    next_response,
    read_adaptive,
)
from schemas.interview import InterviewAnswerSchema, InterviewRequestSchema
from service.evaluation import SHIPPED_RULES, evaluator_for
from service.response_examples import fhir_doc_with_example
from service.state import state
from service.web import (
    FHIR_RESPONSES,
    RULES_RESPONSE_HEADERS,
    V1_ERRORS,
    Blueprint,
    FhirInputError,
    fhir_response,
    flatten_errors,
    json_response,
    problem_responses,
    require_fhir,
    sends_fhir,
)

blp = Blueprint(
    "interview",
    __name__,
    url_prefix="/v1",
    description="An adaptive interview: one question at a time, safety questions first, and "
    "a stop as soon as nothing left to ask could change the answer.",
)

# Schema instances, built once: a schema class passed here would be rebuilt on every request.
INTERVIEW_REQUEST = InterviewRequestSchema()

NO_ANSWERS_YET = {"pain": {"intensity": 4}}
EMERGENCY_SIGNS_ANSWERED_NO = {
    "pain": {"intensity": 4},
    "signs": {
        "saddle_numbness": False,
        "bladder_or_bowel_changes": False,
        "foot_cold_or_pale": False,
        "breathlessness": False,
        "chest_pain": False,
        "coughing_blood": False,
        "pain_out_of_proportion": False,
        "calf_tense": False,
    },
    "declined": ["history.hormone_treatment"],
}
REQUEST_EXAMPLES = {
    "first_call": {"summary": "The first call: only the pain score", "value": NO_ANSWERS_YET},
    "after_the_first_checklist": {
        "summary": "The emergency checklist answered 'None of these', one question declined",
        "value": EMERGENCY_SIGNS_ANSWERED_NO,
    },
}


# For the documented examples, built at import, when there is no app: the shipped rules'.
EXAMPLE_INTERVIEWER = Interviewer(
    SHIPPED_RULES.get().ruleset,
    SHIPPED_RULES.report_sections,
    load_checklists(SHIPPED_RULES.report_sections),
)


@cache
def interviewer_for(evaluator: Evaluator) -> Interviewer:
    """One interviewer per loaded rules version, built on its first interview."""
    sections = state().rules.report_sections
    return Interviewer(evaluator.ruleset, sections, load_checklists(sections))


@blp.route("/interview/next", methods=["POST"])
@blp.arguments(
    INTERVIEW_REQUEST,
    description="The report so far (as POST /v1/assess takes it, without store or subject) "
    "and the fields the person declined to answer.",
    examples=REQUEST_EXAMPLES,
)
@blp.response(
    200,
    InterviewAnswerSchema,
    description="The next question, or should_stop with the reason; and the red-flag screen.",
    headers=RULES_RESPONSE_HEADERS,
    example=EXAMPLE_INTERVIEWER.next(dict(NO_ANSWERS_YET), []),
)
@problem_responses(blp, 400, 413, 415, 422, *V1_ERRORS)
def next_question(body: dict):
    """Ask the next question

    Stateless and never stored: send the report so far with the fields the person declined,
    get the next question. Red-flag questions come first, the most urgent level first, often
    as one checklist ("Do you have any of these? ... / None of these": ticked items are true,
    the others false). Then come the questions that could still change the stop decision or
    the leading cause. `should_stop` says when to stop: at once on an emergency, or when
    nothing left to ask could change the answer. `screen` is the POST /v1/escalation-check
    answer for the report so far.

    Put each answer into the report (`section.field`, as `question.fields` names it) or its
    field into `declined`, and call again.
    """
    declined = body.pop("declined")
    evaluator = evaluator_for(body.pop("rules_version", None))
    try:
        answer = interviewer_for(evaluator).next(body, declined)
    except UnknownReportFields as unknown:  # the schema refuses these first; kept for safety
        abort(422, errors={"json": {"declined": [f"Not a report field: {unknown.paths}."]}})
    return json_response(answer)


# -- FHIR SDC: $next-question --------------------------------------------------------------------

REQUIRED_FIELD = "pain.intensity"
NEXT_QUESTION_BODY = {
    "required": True,
    "description": "A QuestionnaireResponse containing its adaptive Questionnaire (or "
    "Parameters with it as `in`): the questions asked so far and the answers given.",
    "content": {
        FHIR_MEDIA_TYPE: {
            **FHIR_RESPONSES["QuestionnaireResponse"][FHIR_MEDIA_TYPE],
            "examples": {
                "start": {"summary": "Start an interview", "value": first_response()},
            },
        }
    },
}


@blp.route("/fhir/Questionnaire/$next-question", methods=["POST"])
@blp.doc(
    requestBody=NEXT_QUESTION_BODY,
    **fhir_doc_with_example(
        "QuestionnaireResponse",
        "The response with the next question, or completed.",
        # The answer to the example: the first question, the pain score.
        next_response(first_response(), EXAMPLE_INTERVIEWER.question_for(REQUIRED_FIELD), None),
    ),
)
@problem_responses(blp, 400, 413, 415, 422, *V1_ERRORS)
def fhir_next_question():
    """The next question, as FHIR SDC $next-question

    The adaptive-form operation of FHIR Structured Data Capture
    (https://hl7.org/fhir/uv/sdc/adaptive.html). Post a QuestionnaireResponse that contains its
    adaptive Questionnaire (start with an empty one: the example). The answer adds the next
    question to the contained Questionnaire and to the response, or sets the response's status
    to `completed`, with the reason in a display item. A question left unanswered is read as
    declined, never as "no". The first question is the pain score, then the questions of
    POST /v1/interview/next, in the same order. A response to another Questionnaire is an
    OperationOutcome naming it.
    """
    require_fhir()
    if not sends_fhir():
        raise FhirInputError(415, f"Send the QuestionnaireResponse as {FHIR_MEDIA_TYPE}.")
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise FhirInputError(400, "The body is not valid JSON.") from None
    interviewer = interviewer_for(evaluator_for(None))
    try:
        response, answers, declined = read_adaptive(body, interviewer.specs)
    except AdaptiveFormError as error:
        raise FhirInputError(422, error.detail, error.errors) from None
    if REQUIRED_FIELD not in answers:
        if REQUIRED_FIELD in declined:
            raise FhirInputError(422, "The pain score is needed before any other question.")
        question = interviewer.question_for(REQUIRED_FIELD)
        return fhir_response(next_response(response, question, None))
    report = nest(answers)
    errors = INTERVIEW_REQUEST.validate(report)
    if errors:
        raise FhirInputError(422, "Some answers are not valid.", flatten_errors(errors))
    answer = interviewer.next(report, declined)
    result = _result_text(answer) if answer["should_stop"] else None
    return fhir_response(next_response(response, answer["question"], result))


def _result_text(answer: dict) -> str:
    """How the interview ended, as the completed form says it: never a level that reads as
    settled when red-flag questions were left unanswered."""
    screen = answer["screen"]
    text = f"{answer['stop_reason']}: triage level {screen['level']}."
    if not screen["complete"]:
        unanswered = len(screen["unanswered_red_flag_questions"])
        text += (
            f" Triage is incomplete: {unanswered} red-flag question(s) were not answered, so"
            " the level could be higher."
        )
    return text
