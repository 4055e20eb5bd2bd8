"""A Python client generated from openapi/openapi.json, as an integrator would make one, works
against the real service: the spec is one a generator reads without a warning, with one type
for each enumeration and a plan that is "the plan, or None".

The client is generated offline into a temporary folder with openapi-python-client (a pinned
development dependency), and used against gunicorn on a migrated SQLite file.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from service import examples
from service.evaluation import SHIPPED_RULES
from tests.conftest import Gunicorn, gunicorn_server

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PACKAGE = "popliteal_client"
BIN = Path(sys.executable).parent
SUBJECT = {"system": "https://fitness.example/member-ids", "value": "m-generated-client"}
TRACE_ID = "integrator-trace.0001"
# What the generator made of the spec before each shared enumeration was one component: a
# type per field for the same triage levels.
REDEFINED = (
    "EscalationLevel",
    "RedFlagLevel",
    "AssessmentSummaryLevel",
    "MissingInformationCouldRaiseLevelTo",
    "LevelChangeFrom",
)
# And before a field that may be null was "the component, or null": an empty class for the
# null (AssessmentExercisePlanType1Type0), or three copies of a choice (PainReportOnsetType1).
UNION_MEMBER = re.compile(r"Type\d")


def _generate(into: Path) -> str:
    """Run the generator; its output (stdout and stderr), which names every warning."""
    result = subprocess.run(
        [
            *(str(BIN / "openapi-python-client"), "generate", "--path", str(SPEC_FILE)),
            *("--meta", "none", "--output-path", str(into / PACKAGE)),
        ],
        cwd=into,
        # The generator formats what it writes with ruff, which it looks for on PATH.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def generation(tmp_path_factory) -> Iterator[tuple[str, ModuleType]]:
    """(the generator's output, the generated package, imported)."""
    folder = tmp_path_factory.mktemp("generated")
    output = _generate(folder)
    sys.path.insert(0, str(folder))
    try:
        yield output, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def client_package(generation) -> ModuleType:
    return generation[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Gunicorn]:
    database = f"sqlite:///{tmp_path_factory.mktemp('client-db') / 'popliteal.sqlite3'}"
    with gunicorn_server(
        database, tenant="generated-client", workers=1, output=subprocess.DEVNULL
    ) as running:
        yield running


def _api(package: ModuleType, module: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.{module}")


def _authenticated(package: ModuleType, server: Gunicorn):
    return package.AuthenticatedClient(base_url=server.url, token=server.keys[0])


def test_the_generator_reads_the_spec_without_a_warning(generation):
    output, _package = generation
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    names = set(dir(importlib.import_module(f"{PACKAGE}.models")))
    assert {"TriageLevel", "TimeFrameCode", "PlanStatus", "ExercisePhase"} <= names
    assert sorted(name for name in names if name.startswith(REDEFINED)) == []
    assert sorted(name for name in names if UNION_MEMBER.search(name)) == []


def test_assess_with_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    assess = _api(client_package, "assessment.post_v1_assess")
    report = examples.SELF_CARE_TECHNIQUE
    body = models.AssessRequest.from_dict({**report, "store": False})

    response = assess.sync_detailed(client=_authenticated(client_package, server), body=body)

    assert response.status_code == 200, response.content
    assessment = response.parsed
    assert isinstance(assessment, models.Assessment)
    expected = SHIPPED_RULES.get().assess(dict(report))
    assert assessment.triage.level == models.TriageLevel(expected["triage"]["level"])
    assert isinstance(assessment.exercise_plan, models.ExercisePlan)
    assert isinstance(assessment.exercise_plan.status, models.PlanStatus)
    # The models hold every field the service sent: nothing lost, nothing added.
    assert assessment.to_dict() == response_json(response)


def test_a_withheld_plan_is_none_in_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    assess = _api(client_package, "assessment.post_v1_assess")
    report = examples.POSSIBLE_DVT
    expected = SHIPPED_RULES.get().assess(dict(report))
    assert expected["exercise_plan"] is None  # the example withholds the plan

    assessment = assess.sync(
        client=_authenticated(client_package, server),
        body=models.AssessRequest.from_dict({**report, "store": False}),
    )

    assert isinstance(assessment, models.Assessment)
    assert assessment.exercise_plan is None
    assert assessment.triage.level == models.TriageLevel(expected["triage"]["level"])
    assert [flag.code for flag in assessment.triage.red_flags] == [
        flag["code"] for flag in expected["triage"]["red_flags"]
    ]


def test_the_escalation_check_with_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    check = _api(client_package, "assessment.post_v1_escalation_check")
    report = examples.POSSIBLE_DVT
    expected = SHIPPED_RULES.get().escalation_check(dict(report))

    response = check.sync_detailed(
        client=_authenticated(client_package, server),
        body=models.SymptomReport.from_dict(report),
    )

    assert response.status_code == 200, response.content
    escalation = response.parsed
    assert isinstance(escalation, models.Escalation)
    # The same enumeration type as the assessment's triage level.
    assert escalation.level == models.TriageLevel(expected["level"])
    assert escalation.escalate is expected["escalate"]
    assert escalation.to_dict() == response_json(response)


def test_a_stored_record_is_created_then_read_with_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    assess = _api(client_package, "assessment.post_v1_assess")
    read = _api(client_package, "records.get_v1_assessments_assessment_id")
    client = _authenticated(client_package, server)

    created = assess.sync_detailed(
        client=client,
        body=models.AssessRequest.from_dict({**examples.SCIATICA_TINGLING, "subject": SUBJECT}),
        x_request_id=TRACE_ID,
    )

    assert created.status_code == 201, created.content
    record = created.parsed
    assert isinstance(record, models.AssessmentRecord)
    # The client's own request id, documented as a header, is the one the record keeps.
    assert created.headers["X-Request-ID"] == record.request_id == TRACE_ID
    assert created.headers["Location"] == record.links.self_
    assert record.subject.to_dict() == SUBJECT
    again = read.sync_detailed(client=client, assessment_id=record.id)
    assert again.status_code == 200, again.content
    assert isinstance(again.parsed, models.AssessmentRecord)
    assert again.parsed.to_dict() == record.to_dict()
    assert again.parsed.report.to_dict() == examples.SCIATICA_TINGLING


def test_a_missing_key_is_a_401_problem_in_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    check = _api(client_package, "assessment.post_v1_escalation_check")
    anonymous = client_package.Client(base_url=server.url)

    response = check.sync_detailed(
        client=anonymous, body=models.SymptomReport.from_dict(examples.MINIMAL)
    )

    assert response.status_code == 401
    assert isinstance(response.parsed, models.Problem)
    assert response.parsed.status == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_invalid_report_is_a_422_problem_in_the_generated_client(client_package, server):
    models = importlib.import_module(f"{PACKAGE}.models")
    check = _api(client_package, "assessment.post_v1_escalation_check")
    # The generated models do not check ranges: the service does, and says which field.
    out_of_range = models.SymptomReport.from_dict({"pain": {"intensity": 11}})

    response = check.sync_detailed(client=_authenticated(client_package, server), body=out_of_range)

    assert response.status_code == 422
    problem = response.parsed
    assert isinstance(problem, models.Problem)
    assert problem.status == 422
    assert "pain.intensity" in problem.errors.to_dict()


def response_json(response) -> dict:
    return json.loads(response.content)
