"""ICD-10-CM codes for the conditions, checked against the classification itself.

The code file is data; these tests hold it to the ICD-10-CM code set shipped in the
``simple-icd-10-cm`` package: every code exists, every leaf is billable and belongs to its
category, every title is the classification's own, and each leaf names the side it is chosen
for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import simple_icd_10_cm as icd
import yaml

from rules import RuleDefinitionError, load_library
from rules.terminology import ICD10CM_FILE, load_classification, report_field_paths

LIBRARY = load_library()
CLASSIFICATION = LIBRARY.classification
FAMILIES = [
    (condition.condition, index, family)
    for condition in CLASSIFICATION.conditions.values()
    for index, family in enumerate(condition.families)
]
LEAVES = [
    (condition, side, leaf)
    for condition, _, family in FAMILIES
    for side, leaf in family.leaves.items()
]
# The classification's words for each side of a leaf.
SIDE_WORDS = {
    "right": ("right",),
    "left": ("left",),
    "both": ("bilateral",),
    "unspecified": (
        "unspecified knee",
        "unspecified thigh",
        "unspecified side",
        "unspecified lower limb",
        "knee, unspecified",
    ),
}
# What the clinical team expects for each coded condition (the category's family).
EXPECTED_CATEGORIES = {
    "hamstring_strain": ["S76.31"],
    "meniscus_tear": ["S83.20", "M23.20"],
    "bakers_cyst": ["M71.2"],
    "sciatic_nerve_irritation": ["M54.3"],
    "piriformis_syndrome": ["G57.0"],
    "hamstring_tendinopathy": ["M76.89"],
    "knee_osteoarthritis": ["M17"],
    "knee_tendonitis": ["M76.89"],
}
UNCODED = {
    "tight_hamstrings",
    "improper_technique",
    "overstretching",
    "muscle_imbalance",
    "referred_pain",
}


def test_every_condition_of_every_version_has_codes_or_a_reason_for_none():
    for evaluator in LIBRARY:
        assert set(evaluator.ruleset.causes_by_code) == set(CLASSIFICATION.conditions)


def test_the_coded_conditions_use_the_expected_categories():
    coded = {
        code: [family.category.code for family in entry.families]
        for code, entry in CLASSIFICATION.conditions.items()
        if entry.families
    }
    assert coded == EXPECTED_CATEGORIES


def test_conditions_without_a_fitting_code_say_why_rather_than_force_one():
    uncoded = {c for c, entry in CLASSIFICATION.conditions.items() if not entry.families}
    assert uncoded == UNCODED
    for code in UNCODED:
        assert len(CLASSIFICATION.conditions[code].no_code_reason) > 40


def test_the_system_is_the_fhir_uri_for_icd_10_cm():
    assert CLASSIFICATION.system == "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    ("condition", "index", "family"), FAMILIES, ids=[f"{c}-{i}" for c, i, _ in FAMILIES]
)
def test_each_category_exists_with_its_own_title(condition, index, family):
    assert icd.is_valid_item(family.category.code), family.category.code
    assert icd.get_description(family.category.code) == family.category.display


@pytest.mark.parametrize(
    ("condition", "side", "leaf"), LEAVES, ids=[f"{c}-{s}-{leaf.code}" for c, s, leaf in LEAVES]
)
def test_each_leaf_is_billable_in_its_category_with_its_title_and_side(condition, side, leaf):
    assert icd.is_valid_item(leaf.code), leaf.code
    assert icd.is_leaf(leaf.code), f"{leaf.code} is a category, not a billable leaf"
    assert icd.get_description(leaf.code) == leaf.display
    description = leaf.display.lower()
    assert any(word in description for word in SIDE_WORDS[side]), (side, leaf.display)
    opposite = {"right": "left", "left": "right"}.get(side)
    if opposite:
        assert opposite not in description


def test_each_leaf_descends_from_its_category():
    for _, _, family in FAMILIES:
        for leaf in family.leaves.values():
            assert icd.is_descendant(leaf.code, family.category.code), leaf.code


def test_injury_codes_are_for_the_initial_encounter():
    for _, _, family in FAMILIES:
        for leaf in family.leaves.values():
            if leaf.code.startswith("S"):
                assert leaf.code.endswith("A"), leaf.code


@pytest.mark.parametrize(
    ("condition", "report", "expected"),
    [
        ("bakers_cyst", {"pain": {"side": "right"}}, ["M71.21"]),
        ("bakers_cyst", {"pain": {"side": "left"}}, ["M71.22"]),
        ("bakers_cyst", {"pain": {"side": "both"}}, ["M71.21", "M71.22"]),
        ("bakers_cyst", {"pain": {"intensity": 3}}, ["M71.20"]),
        ("bakers_cyst", None, ["M71.20"]),
        ("knee_osteoarthritis", {"pain": {"side": "both"}}, ["M17.0"]),
        ("knee_osteoarthritis", {"pain": {"side": "right"}}, ["M17.11"]),
        ("piriformis_syndrome", {"pain": {"side": "both"}}, ["G57.03"]),
        ("hamstring_strain", {"pain": {"side": "left"}}, ["S76.312A"]),
        ("meniscus_tear", {"pain": {"onset": "sudden", "side": "right"}}, ["S83.206A"]),
        ("meniscus_tear", {"pain": {"onset": "gradual", "side": "right"}}, ["M23.206"]),
        ("meniscus_tear", {"pain": {"side": "right"}}, ["M23.206"]),
        ("tight_hamstrings", {"pain": {"side": "right"}}, []),
    ],
)
def test_the_leaf_follows_the_side_and_onset_the_report_gives(condition, report, expected):
    assert [c.code for c in CLASSIFICATION.codes_for(condition, report)] == expected


# --- strict loading --------------------------------------------------------------------------


def _write(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(ICD10CM_FILE.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "icd10cm.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _drop_unspecified(data):
    del data["conditions"]["bakers_cyst"][0]["leaves"]["unspecified"]


def _conditional_fallback(data):
    data["conditions"]["bakers_cyst"][0]["applies_when"] = {
        "field": "pain.onset",
        "equals": "sudden",
    }


def _unknown_field(data):
    data["conditions"]["meniscus_tear"][0]["applies_when"]["field"] = "pain.onsett"


def _empty_reason(data):
    data["conditions"]["tight_hamstrings"]["no_code"] = " "


def _unknown_key(data):
    data["conditions"]["bakers_cyst"][0]["billable"] = True


def _http_source(data):
    data["source"]["url"] = "http://www.cdc.gov/nchs/icd/icd-10-cm/"


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (_drop_unspecified, "conditions.bakers_cyst[0].leaves"),
        (_conditional_fallback, "conditions.bakers_cyst"),
        (_unknown_field, "conditions.meniscus_tear"),
        (_empty_reason, "conditions.tight_hamstrings"),
        (_unknown_key, "conditions.bakers_cyst[0]"),
        (_http_source, "source.url"),
    ],
)
def test_a_defective_code_file_fails_naming_file_and_key(tmp_path, edit, where):
    path = _write(tmp_path, edit)
    with pytest.raises(RuleDefinitionError) as raised:
        load_classification(path, report_field_paths(LIBRARY.report_sections))
    assert str(path) in str(raised.value)
    assert where in str(raised.value)


def test_a_condition_without_an_entry_stops_the_start_up(tmp_path):
    path = _write(tmp_path, lambda data: data["conditions"].pop("bakers_cyst"))
    classification = load_classification(path)
    with pytest.raises(RuleDefinitionError, match="no entry for bakers_cyst"):
        classification.check_covers(["bakers_cyst", "tight_hamstrings"], "rules 1.0.0")
