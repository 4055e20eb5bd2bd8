"""Realistic request examples for the OpenAPI description, so "Try it out" works as is.

Response examples are produced by the real rules at start-up, so they are always what the
service actually answers for these requests.
"""

from __future__ import annotations

SELF_CARE_TECHNIQUE = {
    "pain": {
        "intensity": 3,
        "locations": ["behind_knee", "back_of_thigh"],
        "side": "right",
        "quality": ["pulling"],
        "radiates_down_leg": False,
        "onset": "gradual",
        "started_during": "stretching",
        "duration_days": 4,
        "persists_at_rest": False,
        "worse_with": ["stretching"],
        "exercise_induced_calf_pain": False,
    },
    "signs": {
        "swelling": False,
        "bruising": False,
        "redness": False,
        "warmth": False,
        "lump_behind_knee": False,
        "locking_or_catching": False,
        "knee_giving_way": False,
        "felt_pop": False,
        "numbness": False,
        "tingling": False,
        "weakness": False,
        "calf_swelling": False,
        "fever": False,
        "saddle_numbness": False,
        "bladder_or_bowel_changes": False,
        "foot_cold_or_pale": False,
        "calf_tenderness": False,
        "calf_tense": False,
        "pain_out_of_proportion": False,
        "pulsating_lump": False,
        "breathlessness": False,
        "chest_pain": False,
        "coughing_blood": False,
        "unexplained_weight_loss": False,
    },
    "function": {
        "difficulty_walking": False,
        "difficulty_stairs": False,
        "difficulty_daily_tasks": False,
        "unable_to_bear_weight": False,
    },
    "stretching": {"bouncing": True, "hold_seconds": 10, "warmed_up": False},
    "history": {
        "knee_problems": False,
        "hamstring_injury": False,
        "recent_immobility": False,
        "recent_surgery": False,
        "recent_injury": False,
        "cancer": False,
        "blood_thinners": False,
    },
    "profile": {"age": 34, "activity_level": "active"},
}

POSSIBLE_DVT = {
    "pain": {"intensity": 6, "locations": ["behind_knee", "calf"], "persists_at_rest": False},
    "signs": {"calf_swelling": True, "warmth": True},
    "history": {"recent_immobility": True},
}

SCIATICA_TINGLING = {
    "pain": {
        "intensity": 5,
        "locations": ["behind_knee", "buttock", "lower_back"],
        "quality": ["shooting"],
        "radiates_down_leg": True,
        "persists_at_rest": False,
    },
    "signs": {"tingling": True, "weakness": False, "saddle_numbness": False},
    "history": {"back_problems": True},
}

MINIMAL = {"pain": {"intensity": 2}}

REPORT_EXAMPLES = {
    "technique_problem": {
        "summary": "Mild pulling with bouncing and short holds (self care)",
        "value": SELF_CARE_TECHNIQUE,
    },
    "possible_dvt": {
        "summary": "Warm swollen calf after a long journey (urgent)",
        "value": POSSIBLE_DVT,
    },
    "sciatica": {
        "summary": "Shooting pain down the leg with tingling (see a professional)",
        "value": SCIATICA_TINGLING,
    },
    "minimal": {"summary": "Only the pain score: red-flag questions unanswered", "value": MINIMAL},
}

PRESCRIPTION_EXAMPLES = {
    "from_conditions": {
        "summary": "A plan for conditions identified by a clinician",
        "value": {
            "conditions": ["muscle_imbalance", "tight_hamstrings"],
            "pain_intensity": 2,
            "profile": {"age": 41, "activity_level": "active"},
        },
    },
    "from_report": {
        "summary": "A plan from a symptom report",
        "value": {"report": SELF_CARE_TECHNIQUE},
    },
}


def _questionnaire_response(report: dict, subject: dict | None = None) -> dict:
    from rules import load_library
    from schemas.fhir.questionnaire import questionnaire_response

    return questionnaire_response(report, load_library().report_sections, subject)


QUESTIONNAIRE_RESPONSE_EXAMPLES = {
    "technique_problem": {
        "summary": "Mild pulling with bouncing and short holds, for a pseudonymous member",
        "value": _questionnaire_response(
            SELF_CARE_TECHNIQUE,
            {"system": "https://fitness.example/member-ids", "value": "m-4f9c2a"},
        ),
    },
    "possible_dvt": {
        "summary": "Warm swollen calf after a long journey (urgent)",
        "value": _questionnaire_response(POSSIBLE_DVT),
    },
}

CDS_HOOK_REQUEST = {
    "hook": "patient-view",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "https://fhir.hospital.example/r4",
    "context": {"userId": "Practitioner/dr-1", "patientId": "pat-1"},
    "prefetch": {
        "intake": QUESTIONNAIRE_RESPONSE_EXAMPLES["technique_problem"]["value"],
        "patient": {
            "resourceType": "Patient",
            "id": "pat-1",
            "identifier": [{"system": "https://hospital.example/mrn", "value": "mrn-1001"}],
        },
    },
}

CDS_FEEDBACK = {
    "feedback": [
        {
            "card": "01a2125f-5c1e-7578-8215-b47dc59e820e",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "01a2125f-5c1e-7578-8215-b47dc59e8211"}],
            "outcomeTimestamp": "2026-11-25T10:00:00Z",
        }
    ]
}
