"""service.wsgi's app, with its rate-limit counters under a key prefix of the benchmark's own.

The service takes RATELIMIT_KEY_PREFIX from its configuration class only (default "popliteal"),
not from the environment, and its Redis keys name the API key by its row id (key:1, ...): a
benchmark sharing a Redis server with anything else could neither keep its counters apart nor
remove them safely. This sets the prefix on the production configuration class, from
BENCH_RATELIMIT_KEY_PREFIX, then imports service.wsgi as gunicorn would: every other setting
and step (create_app, gc.freeze) is the deployed one.

    gunicorn -c gunicorn.conf.py bench.prefixed_app:app
"""

import os

from service import config

config.ProductionConfig.RATELIMIT_KEY_PREFIX = os.environ["BENCH_RATELIMIT_KEY_PREFIX"]

from service.wsgi import app  # noqa: E402 - after the prefix is set

__all__ = ["app"]
