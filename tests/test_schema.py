"""The schema is what the migrations build, and the packages keep to their layers without import
cycles."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, text
from sqlalchemy.schema import CreateIndex

from chamber import create_app
from chamber.extensions import db

PACKAGE = Path(__file__).resolve().parent.parent / "chamber"


@pytest.fixture
def empty_app(databases, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": databases.new(),
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_differences() -> list:
    with db.engine.connect() as connection, warnings.catch_warnings():
        if connection.dialect.name == "sqlite":
            # SQLite's indexes on expressions (lower(name)) cannot be reflected, so Alembic
            # skips them, with a warning: `test_sqlite_expression_indexes_are_the_models` checks
            # them instead. PostgreSQL compares them here.
            warnings.filterwarnings("ignore", message=".*expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def expression_indexes() -> dict[str, str]:
    """{name: CREATE INDEX statement} of the models' indexes on an expression."""
    return {
        index.name: str(CreateIndex(index).compile(dialect=db.engine.dialect))
        for table in db.metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(part, Column) for part in index.expressions)
        and getattr(index._ddl_if, "dialect", "sqlite") == "sqlite"  # not one for PostgreSQL only
    }


def test_sqlite_expression_indexes_are_the_models(empty_app):
    """What the drift check cannot see on SQLite: each index on an expression is in the migrated
    database exactly as the model declares it (the statement SQLite keeps for it)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reflects these indexes, and the drift check compares them")
    upgrade()
    wanted = expression_indexes()
    assert wanted, "no index on an expression: this test checks nothing"
    with db.engine.connect() as connection:
        kept = dict(
            connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            ).all()
        )

    def words(statement: str) -> str:
        return " ".join(statement.replace('"', "").replace("(", " ( ").replace(")", " ) ").split())

    assert {name: words(kept.get(name, "")) for name in wanted} == {
        name: words(statement) for name, statement in wanted.items()
    }


def test_migrations_build_exactly_the_models(empty_app):
    upgrade()
    assert schema_differences() == []


def test_an_empty_database_differs_so_the_drift_check_can_fail(empty_app):
    assert schema_differences(), "the comparison found nothing on an empty database"


def test_migrations_downgrade_to_nothing_and_up_again(empty_app):
    upgrade()
    downgrade(revision="base")
    assert db.inspect(db.engine).get_table_names() in ([], ["alembic_version"])
    upgrade()
    assert schema_differences() == []


# Layers from docs/architecture.md: a package may import only its own layer or lower ones.
LAYERS = {
    "config": 1, "extensions": 1, "core": 1,
    "auth": 2, "members": 2, "mail": 2,
    "events": 3, "resources": 3,
    "calendar": 4,
    "registration": 5,
    "surveys": 6,
    "directory": 7,
    "campaigns": 8,
    "privacy": 9,
    "api": 10, "demo": 10, "worker": 10, "cli": 10, "dashboard": 10, "models": 10, "__init__": 10,
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chamber."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "chamber":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("chamber."))
    return found


def test_lower_packages_never_import_higher_ones():
    breaches = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "migrations":  # Alembic's scripts: they import no package of ours
            assert not _imports(path), f"{relative} imports the application"
            continue
        own = relative.parts[0].removesuffix(".py")
        assert own in LAYERS, f"{relative}: add its package to LAYERS and docs/architecture.md"
        for imported in _imports(path):
            if imported in LAYERS and LAYERS[imported] > LAYERS[own]:
                breaches.append(f"{relative} imports chamber.{imported}")
    assert breaches == []


# --- import cycles ---------------------------------------------------------------------------------

# Modules must not import one another in a circle (module-level imports: not those inside functions
# or under `if TYPE_CHECKING:`), nor may packages, which the layers allow only within one layer.
# Cycles that exist today: none since each domain wires itself (issue 16 item 3: an `init_app` per
# domain and blinker signals between them). The test fails on any cycle not listed here, and when a
# listed one goes, so that it is taken off.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]):
    """The statements Python runs when the module is imported: not those inside functions or
    under `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, field, ()):
                if isinstance(child, ast.ExceptHandler):
                    yield from _import_time_statements(child.body)
                elif isinstance(child, ast.stmt):
                    yield from _import_time_statements([child])


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ours that importing `path` imports directly."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = set()
    for node in _import_time_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from package import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != own}


def import_graph() -> dict[str, set[str]]:
    paths = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts]
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _module_imports(p, modules) for p in paths}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between packages (`chamber.events`, `chamber.cli`)."""
    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        own = ".".join(module.split(".")[:2])
        theirs = {".".join(name.split(".")[:2]) for name in imported}
        packages.setdefault(own, set()).update(theirs - {own})
    return packages


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another in a circle (a strongly connected component
    of two or more), as one circle through it: `[a, b, ..., a]`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_circle_through(graph, group) for group in groups]


def _circle_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest import circle from the group's first module back to itself, for the message."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imported in sorted(graph[module] & group):
            if imported == start:
                return [*paths[module], start]
            if imported not in paths:
                paths[imported] = [*paths[module], imported]
                queue.append(imported)
    raise AssertionError(f"no circle through {sorted(group)}")


def test_no_modules_or_packages_import_one_another_in_a_circle():
    graph = import_graph()
    circles = import_cycles(graph) + import_cycles(package_graph(graph))
    cycles = {frozenset(circle): circle for circle in circles}
    new = [" -> ".join(circle) for group, circle in cycles.items() if group not in KNOWN_CYCLES]
    assert new == [], "new import cycles: break them (a signal, or code moved down a layer)"
    gone = [sorted(group) for group in KNOWN_CYCLES if group not in cycles]
    assert gone == [], "these known cycles are gone: take them off KNOWN_CYCLES"


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


# --- domains wire themselves -----------------------------------------------------------------------

WIRING_CALLS = {"register_link_minter", "connect", "connect_via"}


def _call_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def test_importing_a_module_registers_nothing():
    """Link minters and signal receivers are wired in each domain's `init_app`, which `create_app`
    calls: a module that registers one when imported (a top-level call or a decorator) has a side
    effect, and one the app may never see if nothing happens to import the module."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue
        for statement in ast.parse(path.read_text()).body:
            if isinstance(statement, ast.Expr):
                calls = [statement.value]
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                calls = statement.decorator_list
            else:
                continue
            found += [
                f"{_module_name(path)}:{statement.lineno} {_call_name(call)}"
                for call in calls
                if _call_name(call) in WIRING_CALLS
            ]
    assert found == []


def test_registration_and_surveys_receive_the_calendar_change_of_their_app(app):
    from chamber.events import signals
    from chamber.registration import notifications
    from chamber.surveys import event_changes

    receivers = list(signals.calendar_changed.receivers_for(app))
    assert notifications.event_changed in receivers
    assert event_changes.event_changed in receivers
    assert notifications.confirmed_count in list(signals.calendar_audience.receivers_for(app))
