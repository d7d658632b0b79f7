"""Views hold no queries of their own (issue 16 item 5): a page asks its domain's services or
`queries` module, so a read is written once and its query count is tested there."""

from __future__ import annotations

import ast
from pathlib import Path

import chamber

PACKAGE = Path(chamber.__file__).parent
QUERY_CALLS = {"db.select", "db.session.execute", "db.session.scalar", "db.session.scalars"}

# (module, function) pairs still allowed to query, each with its reason. Keep this short.
ALLOWED = {
    # The health check's `SELECT 1` is the check itself, not a read of the house's data.
    ("core/views.py", "healthz"): "the health check's SELECT 1",
}


ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}


def _defines_routes(path: Path) -> bool:
    """Whether a module has a function decorated as a route (`@bp.route(...)`, `@bp.post(...)`)
    or adds one with `add_url_rule`: a view module, whatever its name."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr in ROUTE_DECORATORS
                ):
                    return True
        if isinstance(node, ast.Attribute) and node.attr == "add_url_rule":
            return True
    return False


def _view_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if _defines_routes(path))


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _queries(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing function, line, call) for every query call in the module."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name if function == "<module>" else function
            if isinstance(child, ast.Call) and _dotted(child.func) in QUERY_CALLS:
                found.append((name, child.lineno, _dotted(child.func) or ""))
            visit(child, name)

    visit(ast.parse(path.read_text(), filename=str(path)), "<module>")
    return found


def test_the_guard_sees_the_view_modules():
    names = {path.relative_to(PACKAGE).as_posix() for path in _view_modules()}
    assert {"dashboard/views.py", "surveys/manage.py", "surveys/results_views.py"} <= names
    assert "calendar/views.py" in names
    # Route modules named for what they show, not "views", are views all the same.
    assert {"registration/checkin.py", "directory/imports.py"} <= names


def test_the_guard_finds_a_query_in_a_view(tmp_path):
    module = tmp_path / "views.py"
    module.write_text("def page():\n    return db.session.scalars(db.select(Thing))\n")
    assert [call for _, _, call in _queries(module)] == ["db.session.scalars", "db.select"]


def test_views_hold_no_queries_of_their_own():
    offending = []
    seen_allowed = set()
    for path in _view_modules():
        module = path.relative_to(PACKAGE).as_posix()
        for function, line, call in _queries(path):
            if (module, function) in ALLOWED:
                seen_allowed.add((module, function))
                continue
            offending.append(f"chamber/{module}:{line} {function}() calls {call}")
    assert not offending, "Move these reads into the domain's services or queries module:\n" + (
        "\n".join(offending)
    )
    assert seen_allowed == set(ALLOWED), "Drop allow-list entries that no longer query: " + str(
        sorted(set(ALLOWED) - seen_allowed)
    )
