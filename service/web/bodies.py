"""Request bodies: every body held to the size limit, and JSON parsed strictly.

A body with Content-Length is werkzeug's to read; a chunked one is read through
``StreamedBody``, which refuses it once it is too long and answers 400 when it cannot be read.
JSON is parsed with orjson (``JSONParser``), which the arguments of every Blueprint go through.
"""

from __future__ import annotations

import io
import sys

import orjson
from flask import Request as FlaskRequest
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from schemas.fhir import FHIR_MEDIA_TYPE

# FHIR JSON's media type before R4 (DSTU2 and STU3); R4 servers still take it.
LEGACY_FHIR_MEDIA_TYPE = "application/json+fhir"

UNREADABLE_BODY = (
    "The request body could not be read: its chunked transfer coding is malformed (a chunk "
    "size that is not hexadecimal, a chunk without its CRLF, no last chunk) or it ended early."
)


def _unreadable(error: Exception) -> bool:
    """Whether reading the body failed because of what the client sent (or did not send).

    The development server signals a bad chunk or a disconnect with OSError; gunicorn raises
    NoMoreData (an OSError) or a ParseException such as InvalidChunkSize. A ParseException
    can only come from gunicorn's own wsgi.input, so gunicorn's module is already loaded
    whenever one is raised: it is looked up, never imported here."""
    if isinstance(error, OSError):
        return True
    gunicorn_errors = sys.modules.get("gunicorn.http.errors")
    return gunicorn_errors is not None and isinstance(error, gunicorn_errors.ParseException)


class StreamedBody(io.RawIOBase):
    """A body without Content-Length (Transfer-Encoding: chunked), as the server decodes it,
    refused with a 413 once it is longer than ``limit`` and with a 400 when it cannot be read.

    werkzeug would read such a body only up to MAX_CONTENT_LENGTH and stop there without
    looking further, handing the app the first ``limit`` bytes of a longer body as if they
    were all of it; and it turns only an OSError or ValueError of the server's input into a 400,
    so gunicorn's InvalidChunkSize and ChunkMissingTerminator were 500s."""

    def __init__(self, stream, limit: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        if self._limit is not None:
            # One byte past the limit is enough to know that the body is too large.
            size = min(size, self._limit + 1 - self._read)
        try:
            data = self._stream.read(size)
        except Exception as error:
            if not _unreadable(error):
                raise
            raise BadRequest(UNREADABLE_BODY) from None
        got = len(data)
        buffer[:got] = data
        self._read += got
        if self._limit is not None and self._read > self._limit:
            raise RequestEntityTooLarge()
        return got


class Request(FlaskRequest):
    """Flask's request, with a chunked body held to the same limit as any other, and FHIR JSON
    under its older media type taken as FHIR JSON."""

    @property
    def mimetype(self) -> str:
        # application/json+fhir (FHIR before R4) is application/fhir+json to every check of
        # the body's type: the JSON parser's, the 415 of a body that is not JSON, FHIR's.
        mimetype = super().mimetype
        return FHIR_MEDIA_TYPE if mimetype == LEGACY_FHIR_MEDIA_TYPE else mimetype

    @cached_property
    def stream(self):
        if self.shallow:
            raise RuntimeError("This request was created with shallow=True: no body to read.")
        # A Content-Length body is werkzeug's: refused at once when over the limit, and read
        # to its length. Without one, the server must say it ends the body (gunicorn and the
        # development server do, for chunked bodies); otherwise werkzeug reads nothing.
        if self.content_length is None and "wsgi.input_terminated" in self.environ:
            return StreamedBody(self.environ["wsgi.input"], self.max_content_length)
        return get_input_stream(self.environ, max_content_length=self.max_content_length)


class JSONParser(FlaskParser):
    """Parses request bodies with orjson: strict JSON (no NaN), nesting capped at 1024 levels,
    and any malformed body (bad syntax, bad UTF-8, too deep) is a 400 rather than a crash."""

    def load_json(self, req, schema):
        if not core.is_json(req.mimetype):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._handle_invalid_json_error(exc, req)


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = JSONParser()
