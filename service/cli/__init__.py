"""Command-line tools: migrations, API keys, and reassessing stored records after a release.

flask --app service.wsgi db upgrade
flask --app service.wsgi keys create --tenant acme-fitness --label "production backend"
flask --app service.wsgi keys list [--tenant acme-fitness]
flask --app service.wsgi keys revoke 3
flask --app service.wsgi reassess --tenant acme-fitness --rules-version 2.0.0 \
    [--output report.json] [--format json|jsonl] [--changed-only]
flask --app service.wsgi backup create /backups/popliteal-2026-05-01.backup
flask --app service.wsgi backup restore /backups/popliteal-2026-05-01.backup [--replace]
"""

from __future__ import annotations

from flask import Flask

from service.cli.api_keys import keys
from service.cli.backups import backup
from service.cli.database import db
from service.cli.reassessment import reassess

__all__ = ["backup", "db", "keys", "reassess", "register_commands"]


def register_commands(app: Flask) -> None:
    app.cli.add_command(db)
    app.cli.add_command(keys)
    app.cli.add_command(reassess)
    app.cli.add_command(backup)
