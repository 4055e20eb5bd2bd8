"""Packed records: every clinical case's answer and request come back byte for byte, small;
every encoding ever stored stays readable; a damaged value or dictionary is refused, never
read as something else."""

from __future__ import annotations

import shutil
import zlib

import orjson
import pytest
import zstandard

from rules import load_library
from service.evaluation import REPORT
from service.storage import packing
from service.storage.packing import (
    ZLIB,
    DamagedValue,
    DictionaryChanged,
    check_dictionaries,
    pack_answer,
    pack_request,
    unpack,
)
from tests.rules.clinical_cases import case_reports

# What keeps a stored assessment under 4 kB on disk with its plan and indexes
# (bench/record_size.py: some 2.2 kB): per clinical case, the packed answer and request.
LARGEST_PACKED_ANSWER = 2_600
LARGEST_PACKED_REQUEST = 200


def _answers_and_requests():
    library = load_library()
    for version in library.versions:
        for report in case_reports():
            body = REPORT.load({**report, "rules_version": version})
            body.pop("store", None)
            body.pop("subject", None)
            sent = orjson.dumps(body)
            assessment = library.get(body.pop("rules_version")).assess(body)
            yield orjson.dumps(assessment), sent


CASES = list(_answers_and_requests())


def test_every_cases_answer_and_request_come_back_exactly_and_small():
    for answer, request in CASES:
        packed_answer, packed_request = pack_answer(answer), pack_request(request)
        assert unpack(packed_answer) == answer
        assert unpack(packed_request) == request
        assert len(packed_answer) <= LARGEST_PACKED_ANSWER
        assert len(packed_request) <= LARGEST_PACKED_REQUEST


def test_answers_stored_with_zlib_before_dictionaries_still_read():
    answer = CASES[0][0]
    assert unpack(ZLIB + zlib.compress(answer, 1)) == answer


def test_answers_packed_with_level_3s_larger_tables_before_they_were_shrunk_still_read():
    """The tables' size is the compressor's alone: rows stored before keep their bytes. The
    dictionary is prepared here as it was then (level 3's own tables for its size)."""
    name, _ = packing.DICTIONARIES[packing.ZSTD_ANSWERS_1]
    content = (packing.DICTIONARY_FOLDER / name).read_bytes()
    then = zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_FULLDICT)
    then.precompute_compress(level=3)
    compressor = zstandard.ZstdCompressor(level=3, dict_data=then, write_checksum=True)
    packed_then = [packing.ZSTD_ANSWERS_1 + compressor.compress(answer) for answer, _ in CASES]
    # Not the same bytes as today's settings make: the test packs as the service did then.
    assert any(
        old != pack_answer(answer) for old, (answer, _) in zip(packed_then, CASES, strict=True)
    )
    for packed, (answer, _) in zip(packed_then, CASES, strict=True):
        assert unpack(packed) == answer


def test_the_compressor_uses_the_shrunk_tables_and_checksums_every_value():
    settings = packing.compression_parameters()
    assert (settings.compression_level, settings.hash_log, settings.chain_log) == (3, 15, 14)
    answer = CASES[0][0]
    frame = zstandard.get_frame_parameters(pack_answer(answer)[1:])
    assert frame.has_checksum
    assert frame.content_size == len(answer)
    assert frame.dict_id == packing.dictionary(packing.ZSTD_ANSWERS_1).dict_id() != 0


@pytest.mark.parametrize("damage", ["unknown encoding", "flipped byte", "cut short"])
def test_a_damaged_packed_value_is_refused_not_misread(damage):
    packed = bytearray(pack_answer(CASES[0][0]))
    if damage == "unknown encoding":
        packed[0] = 0x7F
    elif damage == "flipped byte":
        packed[len(packed) // 2] ^= 0x01
    else:
        del packed[-8:]
    with pytest.raises(DamagedValue):
        unpack(bytes(packed))


def test_a_changed_dictionary_stops_storage_naming_its_file(tmp_path, monkeypatch):
    folder = tmp_path / "dictionaries"
    shutil.copytree(packing.DICTIONARY_FOLDER, folder)
    name = packing.DICTIONARIES[packing.ZSTD_ANSWERS_1][0]
    content = bytearray((folder / name).read_bytes())
    content[-1] ^= 0x01
    (folder / name).write_bytes(bytes(content))
    packing.dictionary.cache_clear()
    with monkeypatch.context() as patched:
        patched.setattr(packing, "DICTIONARY_FOLDER", folder)
        with pytest.raises(DictionaryChanged, match=name):
            check_dictionaries()
        packing.dictionary.cache_clear()
    check_dictionaries()  # the shipped files, as they were
