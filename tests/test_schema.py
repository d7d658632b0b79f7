"""The schema is what the migrations build, and the packages keep to their layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

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
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


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
    "api": 7, "demo": 7, "worker": 7, "cli": 7, "dashboard": 7, "models": 7, "__init__": 7,
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
