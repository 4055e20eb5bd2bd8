"""Commands as they can be typed: the hints the command line prints name a command that works
when pasted into the same shell, whichever way this one was started."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

# Flask's own command line needs the app named; the `popliteal` command has it preset.
FLASK_APP_OPTION = "--app service.wsgi"


def typed_command(arguments: str) -> str:
    """``arguments`` (e.g. "keys create --tenant NAME") as a whole command line: through the
    program that is running when it is `popliteal` or `flask`, otherwise through `flask`."""
    program = sys.argv[0] if sys.argv else ""
    name = os.path.basename(program)
    if name == "popliteal":
        return f"{_as_typed(program)} {arguments}"
    if name == "flask":
        return f"{_as_typed(program)} {FLASK_APP_OPTION} {arguments}"
    return f"flask {FLASK_APP_OPTION} {arguments}"


def _as_typed(program: str) -> str:
    """The program's bare name when the shell finds this very program by it (on PATH, as in an
    activated environment or the image); otherwise its full path, which works from anywhere."""
    name = os.path.basename(program)
    found = shutil.which(name)
    full = os.path.realpath(shutil.which(program) or program)
    if found is not None and os.path.realpath(found) == full:
        return name
    return shlex.quote(os.path.abspath(program))
