"""Swagger UI's static files, served by this service under /docs/assets so /docs needs no CDN.

The files (swagger-ui-bundle.js, swagger-ui-standalone-preset.js, swagger-ui.css) come from the
flask-swagger-ui package, which ships Swagger UI's own dist folder and is released under Swagger
UI's version number. Only its files are used: flask-smorest renders the /docs page itself
(OPENAPI_SWAGGER_UI_* in service.config).
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from flask import Blueprint

# The oldest Swagger UI this service may serve; tests/service/test_openapi.py reads the version
# out of the served swagger-ui-bundle.js and fails below it. Raise it with the pin of
# flask-swagger-ui in pyproject.toml and constraints.txt.
MINIMUM_SWAGGER_UI = (5, 34, 0)

SWAGGER_UI_DIST = Path(str(files("flask_swagger_ui") / "dist"))

# Swagger UI's build writes its own version into the bundle (3.x to 5.x alike):
# {PACKAGE_VERSION:"5.34.0",GIT_COMMIT:...}.
_PACKAGE_VERSION = re.compile(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"')


def swagger_ui_version(bundle_js: str) -> tuple[int, int, int]:
    """The Swagger UI version a swagger-ui-bundle.js was built as."""
    found = _PACKAGE_VERSION.search(bundle_js)
    if found is None:
        raise ValueError("no PACKAGE_VERSION in this swagger-ui-bundle.js")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


docs_assets = Blueprint(
    "docs_assets",
    __name__,
    static_folder=str(SWAGGER_UI_DIST),
    static_url_path="/docs/assets",
)
