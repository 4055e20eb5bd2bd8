"""The /docs page: Swagger UI, with its static files served by this service under /docs/assets so
/docs needs no CDN.

The files (swagger-ui-bundle.js, swagger-ui-standalone-preset.js, swagger-ui.css) come from the
flask-swagger-ui package, which ships Swagger UI's own dist folder and is released under Swagger
UI's version number. Only its files are used. flask-smorest registers the /docs route
(OPENAPI_SWAGGER_UI_* in service.config); this module answers it with flask-smorest's page plus
one thing: a fresh Idempotency-Key for each "Execute" that leaves the field empty.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, current_app, render_template_string, url_for

from service.record_creation import IDEMPOTENCY_HEADER

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

# flask-smorest's /docs route, answered by docs_page instead of flask-smorest's own page.
SWAGGER_UI_ENDPOINT = "api-docs.openapi_swagger_ui"
SPEC_ENDPOINT = "api-docs.openapi_json"

# flask-smorest's swagger_ui.html, plus a requestInterceptor. One fixed key in the examples made
# every other example a 422 (the key already used with another body) and a second Execute of the
# same example a silent replay of the first record; so every Execute of an operation that
# documents the header, sent without a key, gets a new UUID (shown in the page's curl line).
# crypto.getRandomValues, not crypto.randomUUID: the latter exists only on https or localhost.
DOCS_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <title>{{ title }}</title>
    <link href="{{ swagger_ui_url }}swagger-ui.css" rel="stylesheet" type="text/css"/>
  </head>
  <body>
    <div id="swagger-ui-container"></div>
    <script src="{{ swagger_ui_url }}swagger-ui-standalone-preset.js"></script>
    <script src="{{ swagger_ui_url }}swagger-ui-bundle.js"></script>
    <script>
      var IDEMPOTENCY_HEADER = {{ idempotency_header | tojson }};

      function freshUuid() {
        var bytes = crypto.getRandomValues(new Uint8Array(16));
        bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80;  // the RFC 9562 variant
        var hex = Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); });
        hex = hex.join("");
        return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
                hex.slice(20)].join("-");
      }

      function isIdempotencyHeader(name) {
        return name.toLowerCase() === IDEMPOTENCY_HEADER.toLowerCase();
      }

      // Whether the operation the request is for documents an Idempotency-Key parameter.
      function takesIdempotencyKey(request) {
        if (!window.ui || !request.method) { return false; }
        var method = request.method.toLowerCase();
        var path = new URL(request.url, location.href).pathname;
        var paths = window.ui.specSelectors.specJson().get("paths");
        return Boolean(paths) && paths.some(function (operations, template) {
          var parameters = operations.getIn([method, "parameters"]);
          var pattern = new RegExp("^" + template.replace(/[.*+?^$()|\\[\\]\\\\]/g, "\\\\$&")
            .replace(/\\{[^}/]+\\}/g, "[^/]+") + "$");
          return Boolean(parameters) && pattern.test(path) && parameters.some(function (p) {
            return p.get("in") === "header" && isIdempotencyHeader(p.get("name") || "");
          });
        });
      }

      function addIdempotencyKey(request) {
        var headers = request.headers = request.headers || {};
        var given = Object.keys(headers).some(function (name) {
          return isIdempotencyHeader(name) && String(headers[name]).trim() !== "";
        });
        if (!given && takesIdempotencyKey(request)) {
          headers[IDEMPOTENCY_HEADER] = freshUuid();
        }
        return request;
      }

      var config = {url: {{ spec_url | tojson }}, dom_id: "#swagger-ui-container"};
      var override_config = {{ swagger_ui_config | tojson }};
      for (var attrname in override_config) { config[attrname] = override_config[attrname]; }
      config.requestInterceptor = addIdempotencyKey;

      window.onload = function () {
        window.ui = SwaggerUIBundle(config);
      };
    </script>
  </body>
</html>
"""


def docs_page() -> str:
    """Swagger UI on this service's spec, set up by OPENAPI_SWAGGER_UI_CONFIG."""
    config = current_app.config
    return render_template_string(
        DOCS_PAGE,
        title=config["API_TITLE"],
        spec_url=url_for(SPEC_ENDPOINT),
        swagger_ui_url=config["OPENAPI_SWAGGER_UI_URL"],
        swagger_ui_config=config.get("OPENAPI_SWAGGER_UI_CONFIG", {}),
        idempotency_header=IDEMPOTENCY_HEADER,
    )


def _answer_docs_route(app: Flask) -> None:
    # flask-smorest registered /docs when the Api was made, before any blueprint; an app that
    # turns Swagger UI off (no OPENAPI_SWAGGER_UI_PATH) has no such route to answer.
    if SWAGGER_UI_ENDPOINT in app.view_functions:
        app.view_functions[SWAGGER_UI_ENDPOINT] = docs_page


docs_assets.record_once(lambda setup: _answer_docs_route(setup.app))
