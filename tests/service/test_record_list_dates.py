"""The record listing's time filters take a date alone as the start of that day in UTC, for
created_after and created_before alike, and refuse a time they cannot place with a message
showing the forms they take."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

REPORT = {"pain": {"intensity": 2}}


def _ids(tenant, **query) -> list[str]:
    response = tenant.client.get("/v1/assessments", query_string=query)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_a_date_alone_is_the_start_of_that_day_in_utc_on_either_side(new_tenant):
    tenant = new_tenant()
    assert tenant.client.post("/v1/assess", json=REPORT).status_code == 201
    [item] = tenant.client.get("/v1/assessments").get_json()["items"]
    day = datetime.fromisoformat(item["created_at"]).date()
    today, tomorrow = day.isoformat(), (day + timedelta(days=1)).isoformat()

    assert _ids(tenant, created_after=today) == [item["id"]]  # from 00:00 UTC that day
    assert _ids(tenant, created_after=tomorrow) == []
    assert _ids(tenant, created_before=today) == []  # before 00:00 UTC that day
    assert _ids(tenant, created_before=tomorrow) == [item["id"]]
    assert _ids(tenant, created_after=today, created_before=tomorrow) == [item["id"]]


@pytest.mark.parametrize("name", ["created_after", "created_before"])
@pytest.mark.parametrize(
    "value", ["2026-12-01T09:30:00", "2026-13-01", "01/12/2026", "2026-12-1", "yesterday"]
)
def test_a_time_that_cannot_be_placed_is_a_422_showing_the_forms_taken(new_tenant, name, value):
    response = new_tenant().client.get("/v1/assessments", query_string={name: value})
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    [message] = response.get_json()["errors"][name]
    assert "2026-12-01T09:30:00Z" in message
    assert "2026-12-01 (the start of that day, UTC)" in message


def test_the_parameters_say_a_date_alone_is_the_start_of_the_day(app):
    spec = app.test_client().get("/openapi.json").get_json()
    parameters = spec["paths"]["/v1/assessments"]["get"]["parameters"]
    for parameter in parameters:
        if parameter["name"] in ("created_after", "created_before"):
            assert "start of that day in UTC" in parameter["description"]
            formats = {form["format"] for form in parameter["schema"]["anyOf"]}
            assert formats == {"date", "date-time"}
            assert date.fromisoformat(parameter["schema"]["example"])
