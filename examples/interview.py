"""An adaptive interview against Popliteal, one question at a time, with the standard library.

POST /v1/interview/next with the report so far and the questions declined; show the question;
put the answer into the report (or the field into "declined"); call again until should_stop.
Safety questions come first, so an emergency ends the interview within a few questions.

A checklist question ("kind": "checklist") lists several yes/no items: each item ticked is
true, every other item shown is false ("None of these" makes them all false). Any other question
answers its one field ("fields"[0]) with a value of its "kind": true/false, a number between
"minimum" and "maximum", one of the "options" values, or a list of them.

The person here is scripted (PERSON), so that the example runs unattended; a real app shows each
question on screen. Run it against a running service:

    POPLITEAL_URL=http://127.0.0.1:8000 POPLITEAL_API_KEY=plt_... python examples/interview.py
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

# A safety net for the loop: the interview always stops well before this.
MAX_QUESTIONS = 60

# The scripted person: the pain score they start with, and what they would answer, by report
# field. A field they cannot answer is declined: "not answered" is never read as "no".
FIRST_REPORT: dict[str, Any] = {"pain": {"intensity": 3}}
PERSON: dict[str, Any] = {
    "pain.locations": ["behind_knee"],
    "pain.side": "right",
    "pain.quality": ["pulling"],
    "pain.onset": "gradual",
    "pain.started_during": "stretching",
    "pain.duration_days": 4,
    "pain.worse_with": ["stretching"],
    "pain.persists_at_rest": False,
    "pain.radiates_down_leg": False,
    "stretching.bouncing": True,
    "stretching.hold_seconds": 10,
    "stretching.warmed_up": False,
    "profile.age": 34,
}
# Every yes/no sign the person does not have: they tick nothing on a checklist of these.
PERSON_SAYS_NO_TO = ("signs.", "function.", "history.", "pain.exercise_induced_calf_pain")


class Popliteal:
    """A minimal client: JSON in, JSON out, problem details raised as errors."""

    def __init__(self, base_url: str, api_key: str) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # The scheme was checked in __init__: only http(s) reaches urllib here.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as error:
            problem = json.load(error)
            raise RuntimeError(f"{error.code} {problem.get('title')}: {problem}") from error


def answer_of(field: str) -> Any:
    """The scripted person's answer to one field, or None when they would decline it."""
    if field in PERSON:
        return PERSON[field]
    if field.startswith(PERSON_SAYS_NO_TO) and field != "history.home_care_days":
        return False
    return None


def put(report: dict[str, Any], field: str, value: Any) -> None:
    """Put an answer at its dotted path: "signs.numbness" goes to report["signs"]["numbness"]."""
    section, name = field.split(".", 1)
    report.setdefault(section, {})[name] = value


def ask(question: dict[str, Any], report: dict[str, Any], declined: list[str]) -> None:
    """Show one question, and record the person's answer in the report (or as declined)."""
    print(f"Q: {question['text']}")
    if question["kind"] == "checklist":
        ticked = []
        for option in question["options"]:
            answer = answer_of(option["field"])
            if answer is None:
                declined.append(option["field"])
                continue
            put(report, option["field"], answer)
            if answer:
                ticked.append(option["text"])
        print(f"   - {option_text(question)}")
        print(f"A: {'; '.join(ticked) if ticked else 'None of these'}")
        return
    field = question["fields"][0]
    answer = answer_of(field)
    if answer is None:
        declined.append(field)
        print("A: (declined)")
    else:
        put(report, field, answer)
        print(f"A: {answer}")


def option_text(question: dict[str, Any]) -> str:
    return "\n   - ".join(option["text"] for option in question["options"])


def interview(client: Popliteal) -> dict[str, Any]:
    """The interview, to its end: the last answer, with should_stop true."""
    report: dict[str, Any] = json.loads(json.dumps(FIRST_REPORT))
    declined: list[str] = []
    for asked in range(MAX_QUESTIONS):
        answer = client.post("/v1/interview/next", {**report, "declined": declined})
        if answer["should_stop"]:
            print(f"Stopped after {asked} questions: {answer['stop_reason']}")
            return answer
        ask(answer["question"], report, declined)
    raise RuntimeError(f"no stop after {MAX_QUESTIONS} questions")


def main() -> int:
    client = Popliteal(
        os.environ.get("POPLITEAL_URL", "http://127.0.0.1:8000"),
        os.environ["POPLITEAL_API_KEY"],
    )
    last = interview(client)
    screen = last["screen"]
    frame = screen.get("time_frame") or {}
    print(f"Triage {screen['level']}; stop stretching: {screen['stop_stretching']}")
    if frame:
        print(frame["text"])
    for flag in screen["red_flags"]:
        print(f"  - {flag['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
