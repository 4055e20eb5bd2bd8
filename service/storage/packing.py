"""What a record was sent and what it answered, kept exactly: JSON bytes, compressed.

A stored answer is the JSON the client was given, byte for byte, and a stored request the JSON
of the report as the service read it, each compressed. The first byte of a packed value names
the encoding of the rest, so that a new encoding never needs stored rows rewritten:
- ``\\x02``: an answer, Zstandard at level 3 with the answers dictionary 1;
- ``\\x03``: a request, Zstandard at level 3 with the requests dictionary 1;
- ``\\x01``: zlib at level 1 (answers stored before dictionaries, some 6 kB each).
Zstandard frames here carry a checksum of the JSON, checked when it is read back.

Answers share most of their text (the advice, the exercises, the disclaimer) and reports their
field names: a dictionary trained on them holds that text once for all records. By
``bench/record_size.py`` over the clinical cases' reports, the median stored answer (22.5 kB
of JSON) is 1.1 kB and the median stored request 0.2 kB; compressing an answer took some 30 us
when the level was chosen (below). A dictionary is part of every value packed with it: it is never
changed or removed. Its bytes are checked against the SHA-256 written here when storage
starts, which fails naming the file if they differ. A better dictionary is a new file with a
new id and a new encoding byte (scripts/train_dictionaries.py makes them).
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from functools import cache
from pathlib import Path

import zstandard

ZLIB = b"\x01"
ZSTD_ANSWERS_1 = b"\x02"
ZSTD_REQUESTS_1 = b"\x03"
# Zstandard's level, by measurement on held-out clinical cases' answers with a 64 KiB
# dictionary: level 3 stores the median answer in 0.71 kB in some 30 us; level 1 in 0.91 kB in
# 19 us; level 9 in 0.51 kB but in 134 us; level 19 in 0.48 kB in 3 ms.
LEVEL = 3
# Level 3's match-finding tables shrunk to what a 22 kB answer needs: 2^15 and 2^14 entries
# instead of the 2^16 and 2^15 that level 3 sizes for a 64 KiB dictionary. At level 3 an input
# above 16 kB starts from a copy of the dictionary's tables (232 of the 369 cases' answers; the
# median is 22.5 kB), so this is 192 KiB copied per such answer instead of 384 KiB, which also
# leaves more of the worker's cache alone; a smaller input uses the tables in place. Measured on the
# answers to the 369 clinical case reports (tests/rules/cases), in one process, over several
# runs: 37-42 us instead of 44-54 us per answer; the median stored answer 1,170 bytes instead
# of 1,146. These are the compressor's settings only: a value packed with either is read back
# the same way, so no stored row changes.
HASH_LOG = 15
CHAIN_LOG = 14
DICTIONARY_FOLDER = Path(__file__).resolve().parent / "dictionaries"
# Encoding byte -> its dictionary's file and the file's SHA-256.
DICTIONARIES = {
    ZSTD_ANSWERS_1: (
        "answers-1.zdict",
        "d4cdf2e1dfcec3ca35359bae63f40f433ce984a2be1bfb0a365f7191b5ac5c0c",
    ),
    ZSTD_REQUESTS_1: (
        "requests-1.zdict",
        "307dac9c74598cd7eacee6087f9b3da3d347619e202e2b6b501f5e4028b45b8b",
    ),
}


class DamagedValue(ValueError):
    """A packed value that cannot be read back exactly: an unknown encoding, or bytes that
    fail their checksum or their decoding."""


class DictionaryChanged(RuntimeError):
    """A dictionary's file is not the one values were packed with."""


@cache
def dictionary(encoding: bytes) -> zstandard.ZstdCompressionDict:
    """The dictionary of an encoding, checked against its digest (read once per process)."""
    name, digest = DICTIONARIES[encoding]
    path = DICTIONARY_FOLDER / name
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != digest:
        raise DictionaryChanged(
            f"{path} is not the dictionary stored records were packed with (its SHA-256"
            " differs): restore the file; a new dictionary needs a new name and encoding"
        )
    return prepared_dictionary(content)


def prepared_dictionary(content: bytes) -> zstandard.ZstdCompressionDict:
    """A dictionary's bytes, ready to pack with the service's settings."""
    prepared = zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_FULLDICT)
    prepared.precompute_compress(compression_params=compression_parameters())
    return prepared


def compressor(prepared: zstandard.ZstdCompressionDict) -> zstandard.ZstdCompressor:
    """A compressor packing as the service does, with a dictionary from prepared_dictionary."""
    return zstandard.ZstdCompressor(compression_params=compression_parameters(), dict_data=prepared)


def compression_parameters() -> zstandard.ZstdCompressionParameters:
    """Level 3 with the shrunk tables; each frame names its dictionary and its content size
    and carries a checksum, as frames packed before did."""
    return zstandard.ZstdCompressionParameters.from_level(
        LEVEL,
        hash_log=HASH_LOG,
        chain_log=CHAIN_LOG,
        write_checksum=True,
        write_dict_id=True,
        write_content_size=True,
    )


def check_dictionaries() -> None:
    """Read and check every dictionary, so that storage fails when it starts, naming the file,
    rather than on the first record (DictionaryChanged, OSError)."""
    for encoding in DICTIONARIES:
        dictionary(encoding)
    codecs = _codecs()
    for encoding in DICTIONARIES:
        # Decompressing once builds the dictionary's decompression tables now, before any
        # other thread can: zstandard builds them lazily, unlocked, on a dictionary's first use.
        codecs.decompressors[encoding].decompress(_pack(encoding, b"")[1:])


class _Codecs:
    """A compressor and a decompressor per dictionary."""

    def __init__(self) -> None:
        self.compressors = {encoding: compressor(dictionary(encoding)) for encoding in DICTIONARIES}
        self.decompressors = {
            encoding: zstandard.ZstdDecompressor(dict_data=dictionary(encoding))
            for encoding in DICTIONARIES
        }


# One set per thread (a compressor may not be used by two threads at once), made on first use.
_per_thread = threading.local()


def _codecs() -> _Codecs:
    try:
        return _per_thread.codecs
    except AttributeError:
        _per_thread.codecs = codecs = _Codecs()
        return codecs


def _pack(encoding: bytes, data: bytes) -> bytes:
    return encoding + _codecs().compressors[encoding].compress(data)


def pack_answer(answer_json: bytes) -> bytes:
    """An answer's JSON bytes, as stored."""
    return _pack(ZSTD_ANSWERS_1, answer_json)


def pack_request(request_json: bytes) -> bytes:
    """A request's JSON bytes, as stored."""
    return _pack(ZSTD_REQUESTS_1, request_json)


def unpack(stored: bytes) -> bytes:
    """The JSON bytes exactly as they were packed."""
    encoding, body = stored[:1], stored[1:]
    decompressor = _codecs().decompressors.get(encoding)
    try:
        if decompressor is not None:
            return decompressor.decompress(body)
        if encoding == ZLIB:
            return zlib.decompress(body)
    except (zstandard.ZstdError, zlib.error) as error:
        raise DamagedValue(f"a packed value does not decode: {error}") from error
    raise DamagedValue(f"unknown packed encoding {encoding!r}")
