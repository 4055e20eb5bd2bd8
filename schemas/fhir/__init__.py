"""FHIR R4 forms of Popliteal's inputs and outputs.

Pure functions from the rules core's JSON-ready results to FHIR resources (dicts), and from a
FHIR QuestionnaireResponse back to a symptom report. No web framework: the HTTP shell chooses
when to use them.

Identifiers of Popliteal's own code systems are URNs: they name the concepts wherever the
service is deployed, and do not pretend to be resolvable web addresses.
"""

from __future__ import annotations

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
