"""The service's shape, held: no import cycles, storage reached through its front door, and the
request hooks installed in the one order ``service.pipeline`` writes down."""

from __future__ import annotations

import grimp
import pytest

from service import create_app
from service.pipeline import AFTER_REQUEST, BEFORE_REQUEST
from service.state import AppState, state
from tests.conftest import app_config

PACKAGES = ("service", "service.api", "service.storage", "service.web")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("service", cache_dir=None)


def _imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    return [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if imported.split(".")[0] == "service"
    ]


def test_no_module_of_the_service_is_imported_back_by_what_it_imports(graph):
    cycles = [
        (importer, *graph.find_shortest_chain(importer=imported, imported=importer))
        for importer, imported in _imports(graph)
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert cycles == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_of_the_service_is_in_a_cycle_with_its_siblings(graph, package):
    assert graph.nominate_cycle_breakers(package) == set()


def test_outside_the_storage_package_storage_is_imported_through_its_front_door(graph):
    reaching_in = [
        (importer, imported)
        for importer, imported in _imports(graph)
        if imported.startswith("service.storage.")
        and importer != "service.storage"
        and not importer.startswith("service.storage.")
    ]
    assert reaching_in == []


def _name(hook) -> str:
    return getattr(hook, "__name__", None) or hook.func.__name__  # a hook wrapped in a partial


def test_the_request_hooks_run_in_the_order_the_pipeline_writes_down(sqlite_database):
    settings = {"CORS_ORIGINS": "https://app.example.test", "RATELIMIT_ENABLED": True}
    app = create_app(app_config(DATABASE_URL=sqlite_database, **settings))
    assert tuple(_name(hook) for hook in app.before_request_funcs[None]) == BEFORE_REQUEST
    # Flask runs after-request hooks last-installed first.
    assert tuple(_name(hook) for hook in reversed(app.after_request_funcs[None])) == AFTER_REQUEST
    state(app).storage.dispose()


def test_the_shared_objects_are_one_typed_state(app):
    shared = state(app)
    assert isinstance(shared, AppState)
    with app.app_context():
        assert state() is shared
