"""Popliteal's HTTP service: a thin Flask shell over the pure rules core.

Routes load and validate arguments (schemas), call the core (rules), and write the result out.

create_app assembles the app: ``service.startup`` checks the settings and builds the shared
objects (``service.state``), ``service.web`` answers errors and documents the API, and
``service.pipeline`` installs the hooks around the views, in their one order.
"""

from __future__ import annotations

import os

from flask import Flask

from service.cli import register_commands
from service.config import Config, config_from_environment
from service.pipeline import install_pipeline
from service.startup import build_state, check_settings, register_blueprints, trust_proxies
from service.state import EXTENSION
from service.web import PoplitealApi, finish_spec, register_error_handlers, spec_kwargs


def create_app(config: type[Config] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config or config_from_environment())
    cors_origins = check_settings(app.config)
    trust_proxies(app)

    database_url = app.config["DATABASE_URL"] or _embedded_database_url(app)
    app_state = build_state(app, database_url)
    app.extensions[EXTENSION] = app_state

    api = PoplitealApi(app, spec_kwargs=spec_kwargs(app_state.rules))
    register_error_handlers(app)
    register_commands(app)
    register_blueprints(app, api)
    finish_spec(api)

    install_pipeline(app, app_state, cors_origins)
    return app


def _embedded_database_url(app: Flask) -> str:
    """The zero-set-up default: a SQLite file in the instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, "popliteal.sqlite3")
