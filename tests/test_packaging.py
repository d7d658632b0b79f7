"""The wheel is the product: build it, install it away from the checkout, and run it from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "packaging-test-secret-key-not-for-production-0123456789"


def clean_environment(**extra: str) -> dict[str, str]:
    """The outer environment without anything that could point the installed copy back at the
    checkout or at another database (CHAMBER_*, FLASK_*, PYTHONPATH), plus `extra`."""
    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CHAMBER_", "FLASK_")) and name not in {"PYTHONPATH", "PYTHONHOME"}
    }
    return {**keep, "PYTHONNOUSERSITE": "1", **extra}


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    if check:
        assert result.returncode == 0, (
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(ROOT)], cwd=out, env=clean_environment())  # fmt: skip
    (built,) = out.glob("chamber-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (its dependencies come from this venv)."""
    site = tmp_path_factory.mktemp("site")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
         "--target", str(site), str(wheel)], cwd=site, env=clean_environment())  # fmt: skip
    return site


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """An empty folder that has nothing to do with the checkout, to run commands from."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def installed_env(site: Path, instance: Path, **extra: str) -> dict[str, str]:
    return clean_environment(PYTHONPATH=str(site), CHAMBER_INSTANCE_PATH=str(instance), **extra)


def test_wheel_holds_the_templates_migrations_and_static_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "chamber/__init__.py",
        "chamber/templates/base.html",
        "chamber/templates/macros/forms.html",
        "chamber/migrations/env.py",
        "chamber/migrations/alembic.ini",
        "chamber/static/chamber.css",
        "chamber/static/chamber.js",
        "chamber/api/openapi.json",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert any(n.startswith("chamber/migrations/versions/") and n.endswith(".py") for n in names)
    stray = [
        n
        for n in names
        if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "instance/"))
    ]
    assert not stray, f"the wheel should not carry {stray}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "chamber = chamber.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_migrates_and_serves_from_an_unrelated_folder(installed, elsewhere):
    instance = elsewhere / "instance"
    env = installed_env(installed, instance, CHAMBER_SECRET_KEY=SECRET_KEY)

    # `chamber db upgrade` through the console script the wheel installed.
    script = installed / "bin" / "chamber"
    assert script.exists(), "the wheel did not install a `chamber` command"
    result = run([sys.executable, str(script), "db", "upgrade"], cwd=elsewhere, env=env)
    assert "Running upgrade" in result.stderr + result.stdout
    assert (instance / "chamber.sqlite").is_file()

    page_check = """
import json, chamber
from chamber import create_app
app = create_app()
client = app.test_client()
home, health, css = client.get("/"), client.get("/healthz"), client.get("/static/chamber.css")
openapi = client.get("/api/v1/openapi.json")
print(json.dumps({
    "package": chamber.__file__,
    "templates": app.jinja_loader.searchpath,
    "home": [home.status_code, home.get_data(as_text=True)],
    "health": [health.status_code, health.get_json()],
    "css": [css.status_code, len(css.data)],
    "openapi": [openapi.status_code, (openapi.get_json() or {}).get("openapi")],
}))
"""
    result = run([sys.executable, "-c", page_check], cwd=elsewhere, env=env)
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    package = Path(seen["package"]).resolve()
    assert package.is_relative_to(installed.resolve()), (
        f"imported {package}, not the installed copy"
    )
    assert not package.is_relative_to(ROOT), "the checkout leaked into the installed run"
    for folder in seen["templates"]:
        assert Path(folder).resolve().is_relative_to(installed.resolve()), (
            f"templates from {folder}"
        )

    status, html = seen["home"]
    assert status == 200, html
    assert "Hertfordshire Chamber of Commerce" in html
    status, health = seen["health"]
    assert status == 200, health
    # A fresh install has a database but no worker yet: up, and saying so for a monitor.
    assert (health["status"], health["database"], health["worker"]["state"]) == (
        "degraded",
        "ok",
        "never",
    ), health
    assert seen["css"][0] == 200 and seen["css"][1] > 0
    assert seen["openapi"] == [200, "3.1.0"], "the wheel must serve the API's OpenAPI document"


def test_installed_wheel_refuses_to_start_without_a_secret_key(installed, elsewhere):
    env = installed_env(installed, elsewhere / "instance")  # no CHAMBER_SECRET_KEY

    result = run([sys.executable, str(installed / "bin" / "chamber"), "routes"],
                 cwd=elsewhere, env=env, check=False)  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "CHAMBER_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr, "the command should explain, not crash"

    result = run([sys.executable, "-c", "from chamber import create_app; create_app()"],
                 cwd=elsewhere, env=env, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and "CHAMBER_SECRET_KEY is not set" in result.stderr
