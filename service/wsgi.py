"""WSGI entry point: ``gunicorn service.wsgi:app``."""

import gc

from service import create_app
from service.fast_path import install_fast_path

app = create_app()
# The valid success case of POST /v1/assess, POST /v1/escalation-check and GET of a stored
# assessment is answered without Flask's request machinery (POPLITEAL_FAST_PATH=false turns
# that off).
install_fast_path(app)

# Everything built at start-up (rule sets, schemas, the OpenAPI document) lives as long as the
# process. Moving it out of the collector's reach keeps full collections from rescanning it
# while requests are served: fewer, shorter pauses at the tail of the latency curve.
gc.freeze()
