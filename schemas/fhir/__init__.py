"""FHIR R4 forms of Popliteal's inputs and outputs.

Pure functions from the rules core's JSON-ready results to FHIR resources (dicts), and from a
FHIR QuestionnaireResponse back to a symptom report. No web framework: the HTTP shell chooses
when to use them.

Identifiers of Popliteal's own code systems are URNs: they name the concepts wherever the
service is deployed, and do not pretend to be resolvable web addresses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

FHIR_MEDIA_TYPE = "application/fhir+json"

ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
URN_UUID = "urn:ietf:rfc:3986"

CAUSE_SYSTEM = "urn:popliteal:fhir:CodeSystem:condition"
EXERCISE_SYSTEM = "urn:popliteal:fhir:CodeSystem:exercise"
TRIAGE_SYSTEM = "urn:popliteal:fhir:CodeSystem:triage-level"
RED_FLAG_SYSTEM = "urn:popliteal:fhir:CodeSystem:red-flag"
REPORT_VALUE_SYSTEM = "urn:popliteal:fhir:CodeSystem:report-value"
QUESTIONNAIRE_URL = "urn:popliteal:fhir:Questionnaire:symptom-intake"

TITLE = "Pain behind the knee when stretching the hamstrings"

# FHIR dateTime (https://hl7.org/fhir/R4/datatypes.html#dateTime): YYYY, YYYY-MM, YYYY-MM-DD, or
# a full time with seconds and an offset (taken as UTC when a client leaves it out).
DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def date_time_start(value: object) -> datetime | None:
    """A FHIR dateTime as the instant it starts: a partial date (a year, or a year and month)
    stands for the start of its period. None when it is not a dateTime."""
    found = DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    if zone is None or zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        return datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0), int(float(fraction or 0) * 1_000_000), tzinfo=tz,
        )  # fmt: skip
    except ValueError:  # a month 13, a day 32, an offset beyond a day
        return None
