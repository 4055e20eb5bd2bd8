"""Command-line tools: migrations, API keys, backups, and reassessing stored records after a
release.

In the project's environment the `popliteal` command has the app preset:

popliteal db upgrade
popliteal keys create --tenant acme-fitness --label "production backend"
popliteal keys list [--tenant acme-fitness]
popliteal keys revoke 3
popliteal reassess --tenant acme-fitness --rules-version 2.0.0 \
    [--output report.json] [--format json|jsonl] [--changed-only]
popliteal backup create /backups/popliteal-2026-05-01.backup
popliteal backup restore /backups/popliteal-2026-05-01.backup [--replace]

Wherever Flask's own `flask` is on the PATH (the container image, for one), the same commands
are `flask --app service.wsgi db upgrade`, and so on.
"""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from service.cli.api_keys import keys
from service.cli.backups import backup
from service.cli.database import db
from service.cli.reassessment import reassess

__all__ = ["backup", "db", "keys", "main", "reassess", "register_commands"]


def register_commands(app: Flask) -> None:
    app.cli.add_command(db)
    app.cli.add_command(keys)
    app.cli.add_command(reassess)
    app.cli.add_command(backup)


# What `flask --app` names: the app, as gunicorn loads it.
APP_IMPORT_PATH = "service.wsgi"


def main() -> None:
    """The `popliteal` command ([project.scripts]): Flask's command line with the app preset,
    exactly as `flask --app service.wsgi`, so that no --app is needed."""
    FlaskGroup(
        name="popliteal",
        help="Popliteal's command line: migrations, API keys, backups, reassessment.",
    ).main(prog_name="popliteal", obj=ScriptInfo(app_import_path=APP_IMPORT_PATH))
