"""Train the Zstandard dictionaries of stored answers and requests, from the clinical cases.

    .venv/bin/python scripts/train_dictionaries.py OUTPUT_FOLDER [--id N]

Reads the report of every clinical case (tests/rules/cases) once under each loaded rules
version as POST /v1/assess does (its schema, then its evaluation), and takes the JSON bytes a
stored assessment keeps: its answer and its request. Trains a dictionary on each kind with fixed
parameters (the same samples give the same dictionary), writes answers-N.zdict and
requests-N.zdict, and prints the median and largest size of the samples packed with them.

A dictionary in use is never changed or removed: stored records need it to be read. New ones
get the next id, and an encoding byte each in service/storage/packing.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import zstandard  # noqa: E402

from rules import load_library  # noqa: E402
from service.evaluation import REPORT  # noqa: E402
from service.storage.packing import compressor, prepared_dictionary  # noqa: E402
from tests.rules.clinical_cases import case_reports  # noqa: E402

# Per kind: the dictionary's size, and FastCover's segment size (what its own search chose on
# these samples, k tried from 50 to 2,000; fixed, so that training is repeatable). d-mers of 8.
PARAMETERS = {"answers": (64 * 1024, 1730), "requests": (8 * 1024, 200)}
DMER_SIZE = 8


def samples() -> dict[str, list[bytes]]:
    """Each case's report under each version, as the assessment view reads it: the answer's
    JSON bytes and the request's, as a stored assessment keeps them."""
    library = load_library()
    answers, requests = [], []
    for version in library.versions:
        for report in case_reports():
            body = REPORT.load({**report, "rules_version": version})
            body.pop("store", None)
            body.pop("subject", None)
            sent = dict(body)  # as service.evaluation.assess_report keeps it
            assessment = library.get(body.pop("rules_version")).assess(body)
            answers.append(orjson.dumps(assessment))
            requests.append(orjson.dumps(sent))
    return {"answers": answers, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--id", type=int, default=1)
    args = parser.parse_args()
    for kind, kind_samples in samples().items():
        size, segment = PARAMETERS[kind]
        dictionary = zstandard.train_dictionary(
            size, kind_samples, k=segment, d=DMER_SIZE, dict_id=args.id
        )
        path = args.output / f"{kind}-{args.id}.zdict"
        path.write_bytes(dictionary.as_bytes())
        # Measured as the service packs.
        packer = compressor(prepared_dictionary(dictionary.as_bytes()))
        sizes = [len(packer.compress(sample)) for sample in kind_samples]
        print(
            f"{path}: {len(dictionary.as_bytes()):,} bytes from {len(kind_samples)} {kind};"
            f" packed median {statistics.median(sizes):,.0f} B, largest {max(sizes):,} B"
        )


if __name__ == "__main__":
    main()
