"""Swagger UI's static files, served from the swagger-ui-bundle package so /docs needs no CDN."""

from __future__ import annotations

from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

docs_assets = Blueprint(
    "docs_assets",
    __name__,
    static_folder=str(swagger_ui_path),
    static_url_path="/docs/assets",
)
