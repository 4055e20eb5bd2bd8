"""Configuration classes, chosen by POPLITEAL_CONFIG and tuned by environment variables."""

from __future__ import annotations

import os


class Config:
    """Defaults for every environment."""

    API_TITLE = "Popliteal"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    # Swagger UI's files are served by this service (from the swagger-ui-bundle package), so
    # /docs works with no internet access.
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {
        "tryItOutEnabled": False,
        "displayRequestDuration": True,
        "defaultModelsExpandDepth": 0,
    }
    # The largest valid report is a few kilobytes; anything over this is refused with 413.
    MAX_CONTENT_LENGTH = int(os.environ.get("POPLITEAL_MAX_BODY_BYTES", 64 * 1024))
    JSON_SORT_KEYS = False
    TESTING = False


class DevelopmentConfig(Config):
    pass


class TestingConfig(Config):
    TESTING = True


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
