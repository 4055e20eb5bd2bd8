"""Configuration classes, chosen by POPLITEAL_CONFIG and tuned by environment variables."""

from __future__ import annotations

import os


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name}={value!r} is not a boolean (true/false)")


def env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return default if value in (None, "") else float(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a number") from None


class Config:
    """Defaults for every environment."""

    API_TITLE = "Popliteal"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    # Swagger UI's files (5.x, from the flask-swagger-ui package: service/docs.py) are served by
    # this service, so /docs works with no internet access.
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {
        "tryItOutEnabled": False,
        "displayRequestDuration": True,
        "defaultModelsExpandDepth": 0,
        # The key entered under "Authorize" survives a page reload.
        "persistAuthorization": True,
        # No validator badge: Swagger UI would otherwise send the spec's URL to
        # validator.swagger.io and load an image from there.
        "validatorUrl": None,
    }
    # The largest valid report is a few kilobytes; anything over this is refused with 413.
    MAX_CONTENT_LENGTH = int(os.environ.get("POPLITEAL_MAX_BODY_BYTES", 64 * 1024))
    JSON_SORT_KEYS = False
    TESTING = False

    # Storage. Unset: an embedded SQLite file in the instance folder, created on first use.
    # Production: a PostgreSQL URL, e.g. postgresql+psycopg://user:password@host:5432/popliteal.
    # Set but empty is a mistake (a secret that did not arrive), refused at start-up.
    DATABASE_URL = os.environ.get("DATABASE_URL")
    # Off: POST /v1/assess and /v1/exercise-prescriptions answer 200 and write nothing.
    STORE_RECORDS = env_flag("POPLITEAL_STORE_RECORDS", True)
    # How long a verified API key is trusted without asking the database again; a revoked key
    # stops working within this time. While the database is unreachable, a key verified
    # within API_KEY_STALE_SECONDS keeps working, so red-flag checks stay available.
    API_KEY_CACHE_SECONDS = env_number("POPLITEAL_API_KEY_CACHE_SECONDS", 10)
    API_KEY_STALE_SECONDS = env_number("POPLITEAL_API_KEY_STALE_SECONDS", 3600)
    # Seconds a client is asked to wait (Retry-After) when the database is unreachable.
    STORAGE_RETRY_AFTER_SECONDS = int(env_number("POPLITEAL_STORAGE_RETRY_AFTER_SECONDS", 5))

    # Rate limits per API key, one budget across every /v1 endpoint (service.rate_counts;
    # the settings keep Flask-Limiter's names). Memory by default (per process); set
    # RATELIMIT_STORAGE_URI=redis://host:6379/0 to share the counts across processes and
    # machines. If Redis goes away, each process falls back to its own counts (per endpoint)
    # and logs a warning.
    RATELIMIT_APPLICATION = os.environ.get("RATELIMIT_APPLICATION", "600 per minute;30 per second")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
    RATELIMIT_ENABLED = env_flag("RATELIMIT_ENABLED", True)
    # Requests with a missing or wrong API key, per client address: each costs a lookup.
    AUTH_FAILURE_LIMIT = os.environ.get("POPLITEAL_AUTH_FAILURE_LIMIT", "30 per minute")

    # CDS Hooks. The public base URL of this service as the CDS clients call it (a token's
    # aud must be {CDS_BASE_URL}/cds-services/{id}), and a JSON file listing the trusted
    # clients: {"clients": [{"issuer", "tenant", "jwks_file" or "jwks_url"}]}. Unset: the
    # service calls answer 401 (discovery still works).
    CDS_BASE_URL = (os.environ.get("POPLITEAL_CDS_BASE_URL") or "").rstrip("/") or None
    CDS_CLIENTS_FILE = os.environ.get("POPLITEAL_CDS_CLIENTS") or None
    # The per-deployment secret (32 characters or more) that turns a CDS patient's real
    # identifiers into the pseudonyms stored with its records. Required with CDS clients.
    CDS_SUBJECT_SECRET = os.environ.get("POPLITEAL_CDS_SUBJECT_SECRET") or None
    # A JWK Set URL must be https and may not name a loopback, link-local or private address;
    # true lifts that for a test bench that serves keys locally.
    CDS_ALLOW_LOCAL_JWKS = env_flag("POPLITEAL_CDS_ALLOW_LOCAL_JWKS", False)
    # Clock skew tolerated on a token's exp and iat, in seconds.
    CDS_TOKEN_LEEWAY_SECONDS = env_number("POPLITEAL_CDS_TOKEN_LEEWAY_SECONDS", 30)

    # HTTP hygiene. Origins of browser apps allowed to call the API (comma-separated, exact
    # origins such as https://app.example.com; none by default, and never a wildcard).
    CORS_ORIGINS = os.environ.get("POPLITEAL_CORS_ORIGINS", "")
    # Strict-Transport-Security max-age, sent once TLS is in front of the service (0: off).
    HSTS_SECONDS = int(env_number("POPLITEAL_HSTS_SECONDS", 0))
    # Reverse proxies in front of the service whose X-Forwarded-For/-Proto are trusted (one
    # behind nginx or an ingress). 0: the peer address is the client's.
    PROXY_HOPS = int(env_number("POPLITEAL_PROXY_HOPS", 0))
    # A PostgreSQL statement running longer than this is cancelled: the request gets a 503
    # rather than holding a worker (gunicorn's own timeout is the last resort).
    DB_STATEMENT_TIMEOUT_MS = int(env_number("POPLITEAL_DB_STATEMENT_TIMEOUT_MS", 5000))


class DevelopmentConfig(Config):
    pass


class TestingConfig(Config):
    TESTING = True
    # Tests see a revocation at once; rate limits are on only in the tests of rate limits.
    API_KEY_CACHE_SECONDS = 0.0
    RATELIMIT_ENABLED = False


class ProductionConfig(Config):
    pass


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_environment() -> type[Config]:
    name = os.environ.get("POPLITEAL_CONFIG", "production")
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(
            f"POPLITEAL_CONFIG={name!r} is not one of {', '.join(sorted(CONFIGS))}"
        ) from None
