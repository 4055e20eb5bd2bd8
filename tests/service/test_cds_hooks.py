"""CDS Hooks 2.0, as a conformant CDS client sees it (https://cds-hooks.hl7.org/2.0/).

The client here makes its own ES384 and RS384 keys, publishes them as a JWK Set (a file, or a
URL served by a real local HTTP server), and signs a fresh token per call with the claims the
specification requires: iss, aud (the service endpoint), exp (at most five minutes), iat and
jti. Requests, cards and feedback follow the specification's shapes.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rules import load_library
from schemas.cds_hooks.cards import _summary
from service import create_app, examples
from service.cds.jwks import JwkSetUnavailable, RemoteJwkSet
from service.cds.tokens import (
    CdsAuthenticationError,
    TokenVerifier,
    jwks_url_problem,
    load_clients,
)
from service.records_as_fhir import level_text
from service.records_as_json import timestamp
from service.state import state
from service.storage.records import ASSESSMENT
from service.storage.tables import records
from tests.conftest import app_config
from tests.service.fhir_client import answer_questionnaire, answers_from_report, validate

BASE_URL = "https://popliteal.test"
ISSUER = "https://ehr.hospital.test"
URL_ISSUER = "https://ehr-by-url.hospital.test"
SERVICE = "popliteal-knee-pain"
ENDPOINT = f"{BASE_URL}/cds-services/{SERVICE}"
INDICATORS = {"info", "warning", "critical"}
LINK_TYPES = {"absolute", "smart"}
ACTION_TYPES = {"create", "update", "delete"}
SELECTION = {"at-most-one", "any"}


class Signer:
    """A CDS client's key pair and the tokens it signs."""

    def __init__(self, algorithm: str, kid: str):
        self.algorithm = algorithm
        self.kid = kid
        if algorithm == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            jwk_algorithm = jwt.algorithms.ECAlgorithm
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk_algorithm = jwt.algorithms.RSAAlgorithm
        self.jwk = {**json.loads(jwk_algorithm.to_jwk(self.private.public_key())),
                    "kid": kid, "alg": algorithm, "use": "sig"}  # fmt: skip

    def token(self, issuer=ISSUER, audience=ENDPOINT, lifetime=240, **changes):
        now = int(time.time())
        claims = {"iss": issuer, "sub": "client-app", "aud": audience, "iat": now,
                  "exp": now + lifetime, "jti": str(uuid.uuid4())}  # fmt: skip
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": "JWT"})  # fmt: skip


SUBJECT_SECRET = "a-test-deployment-secret-of-at-least-32-chars"
ES384 = Signer("ES384", "ehr-es384")
RS384 = Signer("RS384", "ehr-rs384")
STRANGER = Signer("ES384", "ehr-es384")  # same kid, a key the service does not trust


class JwksServer:
    """A real HTTP server on loopback publishing a JWK Set, as an EHR does; it can also be
    slow or failing, and counts the requests it gets."""

    def __init__(self, jwks: dict, status: int = 200, delay: float = 0.0):
        body = json.dumps(jwks).encode()
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


URL_SIGNER = Signer("RS384", "by-url")


@pytest.fixture(scope="module")
def cds_app(tmp_path_factory, sqlite_database):
    folder: Path = tmp_path_factory.mktemp("cds")
    (folder / "jwks.json").write_text(json.dumps({"keys": [ES384.jwk, RS384.jwk]}))
    jwks_server = JwksServer({"keys": [URL_SIGNER.jwk]})
    clients = {"clients": [
        {"issuer": ISSUER, "tenant": "hospital-cds", "jwks_file": "jwks.json"},
        {"issuer": URL_ISSUER, "tenant": "hospital-cds-url", "jwks_url": jwks_server.url},
    ]}  # fmt: skip
    (folder / "clients.json").write_text(json.dumps(clients))
    app = create_app(
        app_config(
            DATABASE_URL=sqlite_database,
            CDS_BASE_URL=BASE_URL,
            CDS_CLIENTS_FILE=str(folder / "clients.json"),
            CDS_SUBJECT_SECRET=SUBJECT_SECRET,
            CDS_ALLOW_LOCAL_JWKS=True,  # the test's key server listens on loopback
        )
    )
    state(app).storage.upgrade()
    yield app
    jwks_server.close()


@pytest.fixture
def cds(cds_app):
    return cds_app.test_client()


@pytest.fixture(scope="module")
def questionnaire(cds_app):
    storage = state(cds_app).storage
    key, _ = storage.keys.create("hospital-cds", label="tests")
    client = cds_app.test_client()
    return client.get("/v1/questionnaire", headers={"Authorization": f"Bearer {key}"}).get_json()


def hook_request(patient_id="pat-1", prefetch=None, **changes):
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://fhir.hospital.test/r4",
        "context": {"userId": "Practitioner/dr-1", "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(changes)
    return body


def intake_for(questionnaire, report, patient_id="pat-1", authored="2026-11-25T09:30:00Z"):
    response = answer_questionnaire(questionnaire, answers_from_report(report))
    response["subject"] = {"reference": f"Patient/{patient_id}"}
    response["authored"] = authored
    return response


def patient(patient_id="pat-1", mrn="mrn-1001"):
    return {"resourceType": "Patient", "id": patient_id,
            "identifier": [{"system": "https://hospital.test/mrn", "value": mrn}]}  # fmt: skip


def call(client, body, token=None, service=SERVICE):
    token = (
        token if token is not None else ES384.token(audience=f"{BASE_URL}/cds-services/{service}")
    )
    return client.post(f"/cds-services/{service}", json=body,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def check_card(card):
    """The CDS Hooks 2.0 Card shape."""
    assert isinstance(card["summary"], str)
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in INDICATORS
    assert card["source"]["label"]
    assert card["source"]["url"].startswith("https://")
    uuid.UUID(card["uuid"])
    for link in card.get("links", []):
        assert link["label"]
        assert link["url"]
        assert link["type"] in LINK_TYPES
    if card.get("suggestions"):
        assert card["selectionBehavior"] in SELECTION  # required with suggestions
        for suggestion in card["suggestions"]:
            assert suggestion["label"]
            uuid.UUID(suggestion["uuid"])
            for action in suggestion["actions"]:
                assert action["type"] in ACTION_TYPES
                assert action["description"]
                if action["type"] == "create":
                    validate(action["resource"])
    for reason in card.get("overrideReasons", []):
        assert reason["code"]
        assert reason["display"]


# -- Discovery ------------------------------------------------------------------------------


def test_discovery_lists_a_patient_view_service_with_a_questionnaire_response_prefetch(cds):
    response = cds.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    service = next(s for s in services if s["hook"] == "patient-view")
    assert service["id"] == SERVICE
    assert service["title"]
    assert service["description"]
    assert service["prefetch"]["intake"].startswith("QuestionnaireResponse?")
    assert "{{context.patientId}}" in service["prefetch"]["intake"]
    assert (
        "questionnaire=urn:popliteal:fhir:Questionnaire:symptom-intake"
        in (service["prefetch"]["intake"])
    )


# -- Cards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "indicator"),
    [
        (examples.SELF_CARE_TECHNIQUE, "info"),
        (examples.SCIATICA_TINGLING, "warning"),
        (examples.POSSIBLE_DVT, "critical"),
        ({"pain": {"intensity": 3}, "signs": {"saddle_numbness": True}}, "critical"),
    ],
    ids=[
        "self care is info",
        "see a professional is a warning",
        "urgent is critical",
        "emergency is critical",
    ],
)
def test_a_prefetched_questionnaire_response_gives_a_card_with_the_triage_as_indicator(
    cds, questionnaire, report, indicator
):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, report),
                                  "patient": patient()})  # fmt: skip
    response = call(cds, body)
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    assert len(cards) == 1
    check_card(cards[0])
    assert cards[0]["indicator"] == indicator


def test_the_card_details_red_flags_and_causes_and_suggests_the_care_plan(cds, questionnaire):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.SCIATICA_TINGLING)})
    card = call(cds, body).get_json()["cards"][0]
    assert "**Possible causes**" in card["detail"]
    assert "Sciatic nerve irritation" in card["detail"]
    assert "not a diagnosis" in card["detail"]
    plan = card["suggestions"][0]["actions"][0]["resource"]
    assert plan["resourceType"] == "CarePlan"
    assert plan["intent"] == "proposal"
    assert plan["subject"] == {"reference": "Patient/pat-1"}
    assert any(link["url"].endswith("/fhir") and "exercise-prescriptions" in link["url"]
               for link in card["links"])  # fmt: skip


def test_an_emergency_card_names_its_red_flag_and_suggests_no_exercise(cds, questionnaire):
    report = {"pain": {"intensity": 3}, "signs": {"saddle_numbness": True}}
    card = call(cds, hook_request(prefetch={"intake": intake_for(questionnaire, report)}))
    card = card.get_json()["cards"][0]
    assert "**Red flags**" in card["detail"]
    plan = card["suggestions"][0]["actions"][0]["resource"]
    assert plan["status"] == "on-hold"
    assert "activity" not in plan
    assert card["suggestions"][0]["isRecommended"] is False


def test_the_latest_response_in_a_searchset_bundle_is_the_one_assessed(cds, questionnaire):
    old = intake_for(questionnaire, examples.SELF_CARE_TECHNIQUE, authored="2026-10-01T08:00:00Z")
    new = intake_for(questionnaire, examples.POSSIBLE_DVT, authored="2026-11-20T08:00:00Z")
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": old}, {"resource": new}]}  # fmt: skip
    card = call(cds, hook_request(prefetch={"intake": bundle})).get_json()["cards"][0]
    assert card["indicator"] == "critical"


def test_the_latest_response_is_chosen_by_instant_and_one_entered_in_error_is_never_used(
    cds, questionnaire
):
    # 10:00+02:00 is 08:00Z, earlier than 09:00Z though later as text.
    earlier = intake_for(
        questionnaire, examples.POSSIBLE_DVT, "pat-21", "2026-11-20T10:00:00+02:00"
    )
    later = intake_for(
        questionnaire, examples.SELF_CARE_TECHNIQUE, "pat-21", "2026-11-20T09:00:00Z"
    )
    in_error = intake_for(
        questionnaire, examples.SCIATICA_TINGLING, "pat-21", "2026-11-21T08:00:00Z"
    )
    in_error["status"] = "entered-in-error"
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": r} for r in (earlier, later, in_error)]}  # fmt: skip
    response = call(cds, hook_request("pat-21", {"intake": bundle}))
    assert response.status_code == 200, response.get_json()
    card = response.get_json()["cards"][0]
    assert card["indicator"] == "info"
    assert "Sciatic" not in card["detail"]


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("2026-10-01T08:00:00Z", "2026-11"),
        ("2025-12-31T23:00:00Z", "2026"),
        ("2026-11-19", "2026-11-20T00:30:00+01:00"),
        ("not a date", "2026-11-20T08:00:00Z"),
    ],
    ids=["month", "year", "day against offset", "unreadable"],
)
def test_a_partial_authored_date_stands_for_the_start_of_its_period(
    cds, questionnaire, older, newer
):
    # The newer response has the red flag: choosing the older one would hide it.
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": intake_for(questionnaire, examples.SELF_CARE_TECHNIQUE, "pat-25", older)},
        {"resource": intake_for(questionnaire, examples.POSSIBLE_DVT, "pat-25", newer)},
    ]}  # fmt: skip
    card = call(cds, hook_request("pat-25", {"intake": bundle})).get_json()["cards"][0]
    assert card["indicator"] == "critical"


def test_an_intake_entered_in_error_is_a_412_not_the_assessment_stored_from_it(cds, questionnaire):
    intake = intake_for(questionnaire, examples.SCIATICA_TINGLING, "pat-26")
    assert call(cds, hook_request("pat-26", {"intake": intake})).status_code == 200
    withdrawn = {**intake, "status": "entered-in-error"}
    response = call(cds, hook_request("pat-26", {"intake": withdrawn}))
    assert response.status_code == 412
    assert "entered in error" in response.get_json()["detail"]


@pytest.mark.parametrize("level", ["self_care", "see_professional", "urgent", "emergency"])
@pytest.mark.parametrize("stop", [False, True])
@pytest.mark.parametrize("complete", [False, True])
def test_a_summary_keeps_the_level_and_every_safety_part_whole(level, stop, complete):
    longest = max((cause.catalogue["name"] for cause in load_library().get().ruleset.causes),
                  key=len)  # fmt: skip
    assessment = {
        "triage": {"level": level, "stop_stretching": stop, "complete": complete},
        "likely_causes": [{"name": longest}],
    }
    short = level_text(load_library().get().ruleset.version, short=True)
    summary = _summary(assessment, short)
    assert len(summary) < 140
    assert short[level] in summary
    assert ("stop stretching" in summary) is stop
    assert ("red-flag questions unanswered" in summary) is not complete
    assert "..." not in summary
    assert not summary.endswith(";")


def test_an_open_red_flag_screen_is_a_warning_that_says_so_and_recommends_no_plan(
    cds, questionnaire
):
    report = {"pain": {"intensity": 2}}
    card = call(
        cds, hook_request("pat-22", {"intake": intake_for(questionnaire, report, "pat-22")})
    )
    card = card.get_json()["cards"][0]
    check_card(card)
    assert card["indicator"] == "warning"
    assert "red-flag questions unanswered" in card["summary"]
    assert "**Red-flag questions not answered**" in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["isRecommended"] is False
    assert suggestion["actions"][0]["resource"]["status"] == "draft"


def test_a_card_says_to_stop_stretching_and_when_it_was_assessed(cds_app, cds, questionnaire):
    intake = intake_for(questionnaire, examples.POSSIBLE_DVT, "pat-23")
    response = call(cds, hook_request("pat-23", {"intake": intake})).get_json()
    card = response["cards"][0]
    assert "stop stretching" in card["summary"]
    assert "**Stop stretching**" in card["detail"]
    storage = state(cds_app).storage
    record = storage.records.get(storage.cds.tenant_id("hospital-cds"), ASSESSMENT, card["uuid"])
    assert f"Assessed {timestamp(record)}" in card["detail"]


def test_opening_the_chart_again_replays_the_same_assessment(cds, questionnaire):
    prefetch = {"intake": intake_for(questionnaire, examples.SELF_CARE_TECHNIQUE, "pat-7"),
                "patient": patient("pat-7", "mrn-7")}  # fmt: skip
    first = call(cds, hook_request("pat-7", prefetch)).get_json()["cards"][0]
    again = call(cds, hook_request("pat-7", prefetch)).get_json()["cards"][0]
    assert first["uuid"] == again["uuid"]


def test_without_a_prefetch_the_latest_stored_assessment_of_the_patient_is_used(cds, questionnaire):
    stored = {"intake": intake_for(questionnaire, examples.SCIATICA_TINGLING, "pat-9"),
              "patient": patient("pat-9", "mrn-9")}  # fmt: skip
    first = call(cds, hook_request("pat-9", stored)).get_json()["cards"][0]
    # Another day, the client prefetches only the Patient; the MRN finds the assessment.
    later = call(cds, hook_request("pat-9", {"patient": patient("pat-9", "mrn-9"),
                                             "intake": None}))  # fmt: skip
    assert later.status_code == 200
    assert later.get_json()["cards"][0]["uuid"] == first["uuid"]


def test_with_nothing_to_read_the_answer_is_412(cds):
    response = call(cds, hook_request("pat-unknown", {"patient": patient("pat-unknown", "x")}))
    assert response.status_code == 412
    assert "QuestionnaireResponse" in response.get_json()["detail"]


def test_another_tenants_assessment_is_never_used(cds_app, questionnaire):
    client = cds_app.test_client()
    prefetch = {"intake": intake_for(questionnaire, examples.SCIATICA_TINGLING, "pat-11"),
                "patient": patient("pat-11", "mrn-11")}  # fmt: skip
    assert call(client, hook_request("pat-11", prefetch)).status_code == 200
    # The client configured by URL belongs to another tenant: it sees nothing for this MRN.
    token = URL_SIGNER.token(issuer=URL_ISSUER)
    response = call(client, hook_request("pat-11", {"patient": patient("pat-11", "mrn-11")}),
                    token)  # fmt: skip
    assert response.status_code == 412


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: b.pop("hook"), "hook"),
        (lambda b: b.__setitem__("hook", "order-sign"), "hook"),
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b.__setitem__("context", "pat-1"), "context"),
        (
            lambda b: b.__setitem__("prefetch", {"intake": {"resourceType": "Observation"}}),
            "prefetch.intake",
        ),
        (
            lambda b: b.__setitem__(
                "prefetch",
                {
                    "intake": {
                        "resourceType": "QuestionnaireResponse",
                        "status": "completed",
                        "questionnaire": "urn:popliteal:fhir:Questionnaire:symptom-intake",
                        "item": [
                            {
                                "linkId": "pain",
                                "item": [
                                    {"linkId": "pain.intensity", "answer": [{"valueString": "3"}]}
                                ],
                            }
                        ],
                    }
                },
            ),
            "pain.intensity",
        ),
    ],
    ids=[
        "no hook",
        "another hook",
        "no hookInstance",
        "no patientId",
        "context not an object",
        "intake not a QuestionnaireResponse",
        "an answer of the wrong type",
    ],
)
def test_a_malformed_request_is_a_400_with_a_clear_message(cds, change, named):
    body = hook_request()
    change(body)
    response = call(cds, body)
    assert response.status_code == 400
    problem = response.get_json()
    assert named in json.dumps(problem)


def test_malformed_json_is_a_400(cds):
    response = cds.post(f"/cds-services/{SERVICE}", data=b"{", content_type="application/json",
                        headers={"Authorization": f"Bearer {ES384.token()}"})  # fmt: skip
    assert response.status_code == 400


def test_an_unknown_service_is_a_404(cds):
    assert call(cds, hook_request(), service="another-service").status_code == 404


# -- Authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("signer", [ES384, RS384], ids=["ES384", "RS384"])
def test_tokens_signed_with_either_required_algorithm_are_accepted(cds, questionnaire, signer):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    assert call(cds, body, signer.token()).status_code == 200


def test_a_key_published_at_a_jwks_url_is_fetched_and_accepted(cds, questionnaire):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    assert call(cds, body, URL_SIGNER.token(issuer=URL_ISSUER)).status_code == 200


def _hs256():
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": ENDPOINT, "iat": now, "exp": now + 60,
                       "jti": str(uuid.uuid4())}, "a-shared-secret-of-32-bytes-long!!",
                      algorithm="HS256", headers={"kid": ES384.kid})  # fmt: skip


@pytest.mark.parametrize(
    "token",
    [
        lambda: "",
        lambda: "not-a-jwt",
        lambda: STRANGER.token(),
        lambda: ES384.token(audience=f"{BASE_URL}/cds-services/another"),
        lambda: ES384.token(audience="https://elsewhere.test/cds-services/popliteal-knee-pain"),
        lambda: ES384.token(issuer="https://untrusted.test"),
        lambda: ES384.token(lifetime=-120),
        lambda: ES384.token(lifetime=3600),
        lambda: ES384.token(jti=None),
        lambda: ES384.token(iat=None),
        lambda: _hs256(),
        lambda: URL_SIGNER.token(issuer=ISSUER),
    ],
    ids=["no token", "not a JWT", "a bad signature", "another service as audience",
         "another host as audience", "an untrusted issuer", "expired", "lives an hour",
         "no jti", "no iat", "HS256 with a shared secret", "a key of another client"],
)  # fmt: skip
def test_a_bad_token_is_a_401(cds, questionnaire, token):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    response = call(cds, body, token())
    assert response.status_code == 401, response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_replayed_token_is_a_401(cds, questionnaire):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    token = ES384.token(jti="one-use-only")
    assert call(cds, body, token).status_code == 200
    replay = call(cds, body, token)
    assert replay.status_code == 401
    assert "used before" in replay.get_json()["detail"]


@pytest.mark.parametrize(
    "expired_seconds_ago",
    [-120, -1, 0, 1, 10, 20, 28],
    ids=lambda s: f"exp {s} s ago",
)
def test_a_used_token_cannot_be_replayed_at_any_moment_of_its_leeway(
    cds, cds_app, questionnaire, expired_seconds_ago
):
    """A token is accepted until exp plus the leeway (30 s); its use is remembered as long, so
    a replay is refused whether it comes before exp or inside the leeway after it."""
    leeway = cds_app.config["CDS_TOKEN_LEEWAY_SECONDS"]
    assert expired_seconds_ago < leeway - 1  # still accepted once, with a second to spare
    now = int(time.time())
    exp = now - expired_seconds_ago
    token = ES384.token(iat=exp - 200, exp=exp)
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    assert call(cds, body, token).status_code == 200
    other = hook_request(patient_id="pat-replayed")  # any body: the token is what is replayed
    replay = call(cds, other, token)
    assert replay.status_code == 401
    assert "used before" in replay.get_json()["detail"]


def test_a_token_whose_alg_does_not_fit_the_key_its_kid_names_is_a_401(cds, questionnaire):
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "client-app", "aud": ENDPOINT, "iat": now,
              "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
    # Signed RS384 with the RSA key, but naming the client's EC key.
    token = jwt.encode(claims, RS384.private, algorithm="RS384", headers={"kid": ES384.kid})
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    response = call(cds, body, token)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_token_past_its_leeway_is_refused_as_expired(cds, cds_app, questionnaire):
    leeway = cds_app.config["CDS_TOKEN_LEEWAY_SECONDS"]
    exp = int(time.time()) - leeway - 2
    token = ES384.token(iat=exp - 200, exp=exp)
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.MINIMAL)})
    response = call(cds, body, token)
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_without_configured_clients_every_call_is_a_401(client):
    app_client = client  # an app with no CDS client configured
    response = app_client.post(f"/cds-services/{SERVICE}", json=hook_request(),
                               headers={"Authorization": f"Bearer {ES384.token()}"})  # fmt: skip
    assert response.status_code == 401


# -- Feedback -------------------------------------------------------------------------------


def _feedback(cds, items, token=None):
    token = token or ES384.token()
    return cds.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": items},
                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_accepted_and_overridden_outcomes_are_recorded(cds_app, cds, questionnaire):
    body = hook_request(prefetch={"intake": intake_for(questionnaire, examples.SELF_CARE_TECHNIQUE,
                                                       "pat-20")})  # fmt: skip
    card = call(cds, body).get_json()["cards"][0]
    accepted = {"card": card["uuid"], "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-11-25T10:00:00Z"}  # fmt: skip
    overridden = {"card": card["uuid"], "outcome": "overridden",
                  "overrideReason": {"reason": card["overrideReasons"][1],
                                     "userComment": "Seen in clinic last week"},
                  "outcomeTimestamp": "2026-11-25T10:05:00Z"}  # fmt: skip
    assert _feedback(cds, [accepted]).status_code == 200
    assert _feedback(cds, [overridden]).status_code == 200
    storage = state(cds_app).storage
    tenant_id = storage.cds.tenant_id("hospital-cds")
    recorded = storage.cds.feedback(tenant_id, card["uuid"])
    assert [f.outcome for f in recorded] == ["accepted", "overridden"]
    assert recorded[0].accepted_suggestions == [{"id": card["suggestions"][0]["uuid"]}]
    assert recorded[1].override_reason["userComment"] == "Seen in clinic last week"


@pytest.mark.parametrize(
    "item",
    [
        {"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-11-25T10:00:00Z"},
        {"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:00:00Z"},
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"},
    ],
    ids=[
        "an unknown outcome",
        "accepted without suggestions",
        "a timestamp that is not one",
        "no card",
    ],
)
def test_malformed_feedback_is_a_400(cds, item):
    assert _feedback(cds, [item]).status_code == 400


def test_feedback_on_an_unknown_card_is_a_404_and_records_nothing(cds_app, cds, questionnaire):
    body = hook_request("pat-24", {"intake": intake_for(questionnaire, examples.SCIATICA_TINGLING,
                                                         "pat-24")})  # fmt: skip
    known = call(cds, body).get_json()["cards"][0]["uuid"]
    unknown = str(uuid.uuid4())
    items = [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}
             for card in (known, unknown)]  # fmt: skip
    response = _feedback(cds, items)
    assert response.status_code == 404
    assert unknown in response.get_json()["detail"]
    # The batch is refused whole: not even the known card's feedback is kept.
    storage = state(cds_app).storage
    assert storage.cds.feedback(storage.cds.tenant_id("hospital-cds"), known) == []


def test_feedback_needs_a_valid_token(cds):
    item = {"card": str(uuid.uuid4()), "outcome": "overridden",
            "outcomeTimestamp": "2026-11-25T10:00:00Z"}  # fmt: skip
    assert _feedback(cds, [item], STRANGER.token()).status_code == 401


def test_an_unreadable_jwk_set_file_stops_the_start_up_naming_it(tmp_path, sqlite_database):
    (tmp_path / "jwks.json").write_text("{not json")
    clients = {"clients": [{"issuer": ISSUER, "tenant": "t", "jwks_file": "jwks.json"}]}
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    config = app_config(DATABASE_URL=sqlite_database, CDS_BASE_URL=BASE_URL,
                        CDS_CLIENTS_FILE=str(tmp_path / "clients.json"),
                        CDS_SUBJECT_SECRET=SUBJECT_SECRET)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"jwks\.json"):
        create_app(config)


@pytest.mark.parametrize("secret", [None, "too-short"])
def test_cds_clients_without_a_long_subject_secret_stop_the_start_up_naming_it(
    tmp_path, sqlite_database, secret
):
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [ES384.jwk]}))
    clients = {"clients": [{"issuer": ISSUER, "tenant": "t", "jwks_file": "jwks.json"}]}
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    config = app_config(DATABASE_URL=sqlite_database, CDS_BASE_URL=BASE_URL,
                        CDS_CLIENTS_FILE=str(tmp_path / "clients.json"),
                        CDS_SUBJECT_SECRET=secret)  # fmt: skip
    with pytest.raises(RuntimeError, match="POPLITEAL_CDS_SUBJECT_SECRET"):
        create_app(config)


def test_a_patients_real_identifiers_are_never_stored_only_their_keyed_hash(
    cds, cds_app, questionnaire
):
    ssn = f"078-05-{uuid.uuid4().int % 10000:04d}"
    named = f"SMITH-JOHN-{uuid.uuid4().hex[:8]}"
    identifiers = [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn},
        {"system": "https://hospital.test/names", "value": named},
    ]
    person = {"resourceType": "Patient", "id": "pat-ssn", "identifier": identifiers}
    intake = intake_for(questionnaire, examples.MINIMAL, patient_id="pat-ssn")
    first = call(cds, hook_request("pat-ssn", {"intake": intake, "patient": person}))
    assert first.status_code == 200
    storage = state(cds_app).storage
    with storage.autocommit() as connection:
        stored = connection.execute(
            sa.select(records.c.subject_system, records.c.subject_value)
        ).all()
    everything = repr(stored) + first.get_data(as_text=True)
    assert ssn not in everything
    assert named not in everything
    assert "pat-ssn" not in repr(stored)  # the FHIR server's patient id is a pseudonym too
    # The session's database holds other tests' records too: the CDS client's own subjects.
    with storage.autocommit() as connection:
        systems = connection.execute(
            sa.select(records.c.subject_system).where(
                records.c.tenant_id == storage.keys.tenant_id("hospital-cds")
            )
        ).scalars()
        assert {system for system in systems if system} == {"urn:popliteal:cds-patient"}
    # The same patient is found again by the same pseudonym, without an intake.
    again = call(cds, hook_request("pat-ssn", {"patient": person, "intake": None}))
    assert again.status_code == 200
    assert again.get_json()["cards"][0]["uuid"] == first.get_json()["cards"][0]["uuid"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.example.org/.well-known/jwks.json", True),
        ("http://ehr.example.org/jwks.json", False),
        ("http://localhost.evil.example/jwks.json", False),
        ("https://127.0.0.1/jwks.json", False),
        ("https://localhost/jwks.json", False),
        ("https://10.1.2.3/jwks.json", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://[::1]/jwks.json", False),
        ("not a url", False),
    ],
)
def test_a_jwk_set_address_is_parsed_and_never_local_or_plain_http(url, allowed):
    assert (jwks_url_problem(url) is None) is allowed
    if "127.0.0.1" in url or "localhost/" in url:
        assert jwks_url_problem(url, allow_local=True) is None


def test_a_local_jwk_set_address_stops_the_start_up_unless_allowed(tmp_path, sqlite_database):
    clients = {"clients": [{"issuer": ISSUER, "tenant": "t",
                            "jwks_url": "http://127.0.0.1:9/jwks.json"}]}  # fmt: skip
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    config = app_config(DATABASE_URL=sqlite_database, CDS_BASE_URL=BASE_URL,
                        CDS_CLIENTS_FILE=str(tmp_path / "clients.json"),
                        CDS_SUBJECT_SECRET=SUBJECT_SECRET)  # fmt: skip
    with pytest.raises(RuntimeError, match="local or private address"):
        create_app(config)


def test_an_empty_jwk_set_at_the_clients_url_is_a_401_not_a_500(tmp_path):
    server = JwksServer({"keys": []})
    try:
        clients = {"clients": [{"issuer": URL_ISSUER, "tenant": "t", "jwks_url": server.url}]}
        (tmp_path / "clients.json").write_text(json.dumps(clients))
        verifier = TokenVerifier(
            load_clients(str(tmp_path / "clients.json"), allow_local_jwks=True), BASE_URL, 30
        )
        token = URL_SIGNER.token(issuer=URL_ISSUER, audience=ENDPOINT)
        with pytest.raises(CdsAuthenticationError, match="JWK Set cannot be fetched"):
            verifier.verify(token, SERVICE)
    finally:
        server.close()


# -- JWK Sets are fetched off the request path; failures are remembered ------------------------


def _url_client_app(tmp_path, server_url, **settings):
    clients = {"clients": [{"issuer": URL_ISSUER, "tenant": "by-url", "jwks_url": server_url}]}
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    app = create_app(
        app_config(
            DATABASE_URL=f"sqlite:///{tmp_path / 'cds-url.sqlite3'}",
            CDS_BASE_URL=BASE_URL,
            CDS_CLIENTS_FILE=str(tmp_path / "clients.json"),
            CDS_SUBJECT_SECRET=SUBJECT_SECRET,
            CDS_ALLOW_LOCAL_JWKS=True,
            **settings,
        )
    )
    state(app).storage.upgrade()
    return app


@pytest.mark.parametrize(
    ("status", "delay"), [(500, 0.0), (200, 6.0)], ids=["failing key server", "slow key server"]
)
def test_tokens_naming_a_client_whose_key_server_fails_are_refused_fast_and_fetch_once(
    tmp_path, status, delay
):
    """A failed fetch is remembered (with a back-off), so forged tokens naming the client
    cannot make the service call out at their pace, nor wait on a slow key server each."""
    server = JwksServer({"keys": [URL_SIGNER.jwk]} if status == 200 else {}, status, delay)
    try:
        client = _url_client_app(tmp_path, server.url).test_client()
        body = hook_request()
        timings = []
        for _ in range(6):
            started = time.monotonic()
            response = call(client, body, URL_SIGNER.token(issuer=URL_ISSUER))
            timings.append(time.monotonic() - started)
            assert response.status_code == 401
            assert "JWK Set cannot be fetched" in response.get_json()["detail"]
        assert server.requests == 1
        assert timings[0] < 4  # the first waits for the fetch, boundedly (2 s)
        assert max(timings[1:]) < 1.5  # the rest never wait (a fetch takes 3 s or fails)
    finally:
        server.close()


class FakeFetch:
    def __init__(self, keys):
        self.keys, self.calls, self.failing = keys, 0, False

    def __call__(self, url, timeout):
        self.calls += 1
        if self.failing:
            raise OSError("unreachable")
        return self.keys


def _settled(jwk_set):
    deadline = time.monotonic() + 5
    while jwk_set._running is not None and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_jwk_set_is_refreshed_when_due_backs_off_on_failure_and_serves_stale_keys_a_while():
    now = [0.0]
    keys = jwt.PyJWKSet.from_dict({"keys": [URL_SIGNER.jwk]}).keys
    fetch = FakeFetch(keys)
    jwk_set = RemoteJwkSet(
        "https://keys.test/jwks.json",
        lifespan=300,
        max_stale=3600,
        min_refresh=60,
        max_backoff=300,
        clock=lambda: now[0],
        fetch=fetch,
    )
    assert jwk_set.keys(URL_SIGNER.kid) == keys
    assert fetch.calls == 1
    now[0] = 299
    jwk_set.keys(URL_SIGNER.kid)
    assert fetch.calls == 1  # fresh: nothing fetched
    jwk_set.keys("an-unknown-kid")
    _settled(jwk_set)
    assert fetch.calls == 2  # an unknown kid asks for a refresh (a key rotation)...
    now[0] = 330
    jwk_set.keys("an-unknown-kid")
    assert fetch.calls == 2  # ...at most once a minute
    fetch.failing = True
    now[0] = 600  # due: the refresh fails, the keys stay usable
    assert jwk_set.keys(URL_SIGNER.kid) == keys
    _settled(jwk_set)
    attempts = fetch.calls
    for second in range(601, 605):  # within the back-off (5 s): no new attempt
        now[0] = second
        jwk_set.keys(URL_SIGNER.kid)
    assert fetch.calls == attempts
    now[0] = 606
    jwk_set.keys(URL_SIGNER.kid)
    _settled(jwk_set)
    assert fetch.calls == attempts + 1  # then one, and the back-off doubles
    now[0] = 612
    jwk_set.keys(URL_SIGNER.kid)
    assert fetch.calls == attempts + 1
    now[0] = 299 + 300 + 3600 + 1  # past lifespan + max_stale: no longer trusted
    with pytest.raises(JwkSetUnavailable):
        jwk_set.keys(URL_SIGNER.kid, may_fetch=False)
    assert fetch.calls == attempts + 1  # may_fetch=False starts nothing


def test_an_address_over_its_cds_failure_budget_gets_429_but_a_valid_token_still_passes(
    tmp_path,
):
    server = JwksServer({"keys": [URL_SIGNER.jwk]})
    try:
        app = _url_client_app(tmp_path, server.url, RATELIMIT_ENABLED=True,
                              AUTH_FAILURE_LIMIT="3 per minute")  # fmt: skip
        client = app.test_client()
        body = hook_request()
        forged = STRANGER.token(issuer=URL_ISSUER, audience=ENDPOINT)
        assert [call(client, body, forged).status_code for _ in range(3)] == [401] * 3
        over = call(client, body, forged)
        assert over.status_code == 429
        assert over.get_json()["type"] == "urn:popliteal:problem:rate-limited"
        assert 0 < int(over.headers["Retry-After"]) <= 60
        fetched = server.requests
        unknown_kid = jwt.encode(
            {"iss": URL_ISSUER, "aud": ENDPOINT, "iat": int(time.time()),
             "exp": int(time.time()) + 60, "jti": str(uuid.uuid4())},
            STRANGER.private, algorithm="ES384", headers={"kid": "rotated-maybe"},
        )  # fmt: skip
        assert call(client, body, unknown_kid).status_code == 429
        assert server.requests == fetched  # over budget: no fetch for an unknown kid
        # A valid token from the same address is never refused for what others sent.
        valid = call(client, body, URL_SIGNER.token(issuer=URL_ISSUER))
        assert valid.status_code in (200, 412), valid.get_json()
    finally:
        server.close()
