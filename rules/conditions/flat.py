"""The report as conditions read it: one flat mapping of ``section.field`` -> answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PATHS: dict[str, dict[str, str]] = {}  # section -> field -> "section.field", filled as seen
_CACHE_LIMIT = 256


def flatten(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as one flat mapping of ``section.field`` -> answer, the form conditions read.

    Built once per evaluation; every condition then costs one dict lookup per field it names.
    The dotted keys are interned in a small cache instead of being concatenated per request.
    """
    flat: dict[str, Any] = {}
    for section, body in report.items():
        if type(body) is dict or isinstance(body, Mapping):  # the ABC check costs more
            paths = _PATHS.get(section)
            if paths is None:
                paths = {} if len(_PATHS) >= _CACHE_LIMIT else _PATHS.setdefault(section, {})
            for key, value in body.items():
                if value is not None:
                    path = paths.get(key)
                    if path is None:
                        path = f"{section}.{key}"
                        if len(paths) < _CACHE_LIMIT:  # bounded, whatever callers send
                            paths[key] = path
                    flat[path] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``section.field`` answers as a report: ``flatten``'s inverse."""
    report: dict[str, Any] = {}
    for path, value in flat.items():
        section, name = path.split(".")
        report.setdefault(section, {})[name] = value
    return report
