"""The integration loop a fitness app builds on Popliteal, end to end, with the standard library.

1. Screen: before a session, POST /v1/escalation-check with what the member has said so far.
   If it says escalate or stop stretching, show that and end here.
2. Assess: POST /v1/assess. While the plan is not ready, ask the member the open questions
   from missing_information (red-flag and contradiction questions first, as listed), add the
   answers to the report and assess again.
3. Show the plan only when exercise_plan.status is "ready".
4. During the session, screen again whenever the member reports pain, and stop when told to.

The member here is scripted (MEMBER_ANSWERS), so that the example runs unattended; a real app
asks each question on screen. Run it against a running service:

    POPLITEAL_URL=http://127.0.0.1:8000 POPLITEAL_API_KEY=plt_... python examples/fitness_app.py
"""

from __future__ import annotations

import copy
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

# How many times to ask and assess again before giving up: each round asks every open
# question at once, so a member who answers them all needs one or two.
MAX_ROUNDS = 4

# What the member types in the app before the first screen.
FIRST_REPORT: dict[str, Any] = {
    "pain": {"intensity": 3, "quality": ["pulling"], "locations": ["behind_knee"]},
    "stretching": {"bouncing": True, "hold_seconds": 10, "warmed_up": False},
}

# The scripted member's answers, by report field (the `field` of each missing_information
# entry). A field the member cannot answer stays unasked: "not asked" is never read as "no".
ANSWERED_NO = (
    "signs.swelling", "signs.bruising", "signs.redness", "signs.warmth", "signs.lump_behind_knee",
    "signs.locking_or_catching", "signs.knee_giving_way", "signs.felt_pop", "signs.numbness",
    "signs.tingling", "signs.weakness", "signs.calf_swelling", "signs.fever",
    "signs.saddle_numbness", "signs.bladder_or_bowel_changes", "signs.foot_cold_or_pale",
    "signs.calf_tenderness", "signs.calf_tense", "signs.pain_out_of_proportion",
    "signs.pulsating_lump", "signs.breathlessness", "signs.chest_pain", "signs.coughing_blood",
    "signs.unexplained_weight_loss", "function.difficulty_walking", "function.difficulty_stairs",
    "function.difficulty_daily_tasks", "function.unable_to_bear_weight", "history.knee_problems",
    "history.hamstring_injury", "history.recent_immobility", "history.recent_surgery",
    "history.recent_injury", "history.previous_clot", "history.cancer",
    "history.pregnant_or_recently_gave_birth", "history.hormone_treatment",
    "history.blood_thinners", "history.symptoms_new_or_worsening", "pain.persists_at_rest",
    "pain.radiates_down_leg", "pain.exercise_induced_calf_pain",
)  # fmt: skip
MEMBER_ANSWERS: dict[str, Any] = {
    "pain.side": "right",
    "pain.onset": "gradual",
    "pain.started_during": "stretching",
    "pain.duration_days": 4,
    "pain.worse_with": ["stretching"],
    "profile.age": 34,
    **dict.fromkeys(ANSWERED_NO, False),
}

# Questions that must be answered before any exercise; "likely_causes" questions only sharpen
# the ranking of causes and may be skipped.
SAFETY_PRIORITIES = {"contradiction", "red_flag", "stop_stretching"}


class Popliteal:
    """A minimal client: JSON in, JSON out, problem details raised as errors."""

    def __init__(self, base_url: str, api_key: str) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def post(self, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        # The scheme was checked in __init__: only http(s) reaches urllib here.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as error:
            problem = json.load(error)
            raise RuntimeError(f"{error.code} {problem.get('title')}: {problem}") from error


def set_field(report: dict[str, Any], field: str, value: Any) -> None:
    """Put an answer at its dotted path: "signs.numbness" goes to report["signs"]["numbness"]."""
    section, name = field.split(".", 1)
    report.setdefault(section, {})[name] = value


def spoken(answer: Any) -> str:
    """An answer as the member would say it: yes/no rather than True/False."""
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    return ", ".join(answer) if isinstance(answer, list) else str(answer)


def screen(client: Popliteal, report: dict[str, Any]) -> bool:
    """The red-flag screen. True when the member may go on; prints why not otherwise."""
    check = client.post("/v1/escalation-check", report)
    if check["escalate"] or check["stop_stretching"]:
        frame = check.get("time_frame") or {}
        print(f"STOP: triage {check['level']}. {frame.get('text', '')}".strip())
        for flag in check["red_flags"]:
            print(f"  - {flag['message']}")
        return False
    return True


def assess_until_ready(client: Popliteal, report: dict[str, Any]) -> dict[str, Any] | None:
    """Assess, ask the open safety questions, assess again; the assessment once its plan is
    ready, or None when the member should not start (escalated, withheld, or unanswered)."""
    for _ in range(MAX_ROUNDS):
        # Nothing is stored in this example. An app that stores drops "store" and sends a
        # subject and an Idempotency-Key, so that a retry never stores the assessment twice.
        assessment = client.post("/v1/assess", {**report, "store": False})
        triage, plan = assessment["triage"], assessment["exercise_plan"]
        if triage["level"] != "self_care" or triage["stop_stretching"] or plan is None:
            frame = triage.get("time_frame") or {}
            print(f"No exercise now: triage {triage['level']}. {frame.get('text', '')}".strip())
            for withheld in assessment.get("exercise_plan_withheld") or []:
                print(f"  - {withheld['reason']}")
            return None
        if plan["status"] == "ready":
            return assessment
        open_questions = [
            entry
            for entry in assessment["missing_information"]
            if entry["priority"] in SAFETY_PRIORITIES
        ]
        answered = 0
        for entry in open_questions:
            if entry["field"] in MEMBER_ANSWERS:
                print(f"Q: {entry['question']}  A: {spoken(MEMBER_ANSWERS[entry['field']])}")
                set_field(report, entry["field"], MEMBER_ANSWERS[entry["field"]])
                answered += 1
        if not answered:
            break
    print(f"Plan not ready ({plan['status']}): the member has not answered every question.")
    return None


def run_session(client: Popliteal, report: dict[str, Any], plan: dict[str, Any]) -> bool:
    """Show the plan and screen again when the member reports pain midway. True if completed."""
    for number, item in enumerate(plan["items"], start=1):
        dose = ", ".join(f"{name} {value}" for name, value in item["dose"].items())
        print(f"{number}. {item['name']} ({item['phase']}): {dose}")
        if number == 2:
            # The member reports pain mid-session: the same pulling as before, a little more.
            during = copy.deepcopy(report)
            during["pain"]["intensity"] = 4
            print("   member reports pain 4/10, pulling; screening again")
            if not screen(client, during):
                return False
    return True


def main() -> int:
    client = Popliteal(
        os.environ.get("POPLITEAL_URL", "http://127.0.0.1:8000"),
        os.environ["POPLITEAL_API_KEY"],
    )
    report = copy.deepcopy(FIRST_REPORT)
    if not screen(client, report):
        return 0
    assessment = assess_until_ready(client, report)
    if assessment is None:
        return 0
    causes = [cause["code"] for cause in assessment["likely_causes"][:2]]
    print(f"Triage {assessment['triage']['level']}; possible causes: {', '.join(causes)}")
    completed = run_session(client, report, assessment["exercise_plan"])
    print("Session completed." if completed else "Session stopped.")
    print(assessment["disclaimer"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
