"""Property-based testing of the running service against its own OpenAPI description.

schemathesis generates valid and invalid requests from the spec for every operation and runs
all of its checks (no 5xx, status codes and media types as documented, responses that conform
to their schemas, invalid data rejected, valid data accepted, 405 for undocumented methods).
The run is seeded so that CI is reproducible; SCHEMATHESIS_SEED and SCHEMATHESIS_EXAMPLES
widen the search locally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.live


def test_the_running_service_passes_every_schemathesis_check(live_server, tmp_path):
    executable = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    command = [
        executable,
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{live_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("SCHEMATHESIS_EXAMPLES", "60"),
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261125"),
        "--workers",
        "2",
        "--request-timeout",
        "10",
        # CDS Hooks calls need a freshly signed single-use JWT per request, which this run
        # does not mint; tests/service/test_cds_hooks.py covers them as a CDS client would.
        "--exclude-path-regex",
        "^/cds-services/",
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "PYTHONPATH": str(REPO_ROOT),
            "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
            "SCHEMATHESIS_API_KEY": live_server.key,
            "SCHEMATHESIS_ASSESSMENT_ID": live_server.assessment_id,
        },
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output, output[-3000:]
