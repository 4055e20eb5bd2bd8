"""The safety properties of the rules hold end to end, through POST /v1/assess and POST
/v1/escalation-check as a client calls them (validation, the fast acceptor and the JSON
encoding included): adding a worrying answer never lowers the level, switches stop off or
brings a withheld plan or an excluded stretch back. The same properties are checked far more
widely on the rules core (tests/rules/test_safety_properties.py); this is the HTTP layer's share.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.rules.test_safety_properties import LEVELS, _stretches, report_and_a_worse_one

HTTP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _post(client, path: str, report: dict) -> dict:
    body = {**report, "store": False} if path == "/v1/assess" else report
    response = client.post(path, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@given(pair=report_and_a_worse_one())
@HTTP
def test_a_worrying_answer_never_makes_either_endpoint_less_safe(client, pair):
    before_report, after_report, path = pair
    before = _post(client, "/v1/assess", before_report)
    after = _post(client, "/v1/assess", after_report)
    where = f"adding {path}"
    assert LEVELS.index(after["triage"]["level"]) >= LEVELS.index(before["triage"]["level"]), where
    assert after["triage"]["stop_stretching"] or not before["triage"]["stop_stretching"], where
    assert after["exercise_plan"] is None or before["exercise_plan"] is not None, where
    if before["exercise_plan"] is not None and after["exercise_plan"] is not None:
        assert _stretches(after) <= _stretches(before), where

    screen_before = _post(client, "/v1/escalation-check", before_report)
    screen_after = _post(client, "/v1/escalation-check", after_report)
    assert LEVELS.index(screen_after["level"]) >= LEVELS.index(screen_before["level"]), where
    assert screen_after["stop_stretching"] or not screen_before["stop_stretching"], where
    assert screen_before["level"] == before["triage"]["level"]
    assert screen_before["stop_stretching"] is before["triage"]["stop_stretching"]
