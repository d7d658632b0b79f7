"""Configuration comes from CHAMBER_* variables, is documented in one table, and refuses unsafe starts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from chamber import create_app
from chamber.config import SETTINGS, ConfigError, from_environment
from chamber.extensions import db

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `(CHAMBER_[A-Z_]+)` \|", README.read_text(), re.MULTILINE))
    assert {variable for variable, *_ in SETTINGS} == documented


def test_environment_variables_become_settings():
    values = from_environment(
        {
            "CHAMBER_BASE_URL": "https://events.example.org",
            "CHAMBER_PROXY_COUNT": "1",
            "UNRELATED": "x",
        }
    )
    assert values == {"BASE_URL": "https://events.example.org", "PROXY_COUNT": 1}


def test_a_malformed_number_is_refused_with_the_variable_named():
    with pytest.raises(ConfigError, match="CHAMBER_PROXY_COUNT must be a whole number"):
        from_environment({"CHAMBER_PROXY_COUNT": "two"})


def test_production_without_a_secret_key_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAMBER_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="CHAMBER_SECRET_KEY is not set"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_the_demo_generates_a_secret_key_once_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAMBER_SECRET_KEY", raising=False)
    first = create_app({"DEMO": True, "INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    second = create_app({"DEMO": True, "INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAMBER_DATABASE_URL", raising=False)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'chamber.sqlite'}"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("TIMEZONE", "Mars/Olympus", "is not a known time zone"),
        ("BRAND_COLOUR", "red; } body { display:none", "must be a colour like"),
    ],
)
def test_bad_settings_are_refused_clearly(tmp_path, setting, value, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), setting: value})


def test_cookies_are_secure_behind_https(tmp_path):
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "BASE_URL": "https://events.example.org/"}
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["BASE_URL"] == "https://events.example.org"


def test_the_command_line_explains_a_missing_secret_key_without_a_traceback(tmp_path, monkeypatch):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "CHAMBER_INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "from chamber.cli import main; main()", "routes"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Error: CHAMBER_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


# --- files the app creates are private -----------------------------------------------------------


@pytest.fixture
def ordinary_umask():
    """The usual 022, under which files would be readable by everyone unless made private."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_instance_folder_is_created_private(tmp_path, ordinary_umask):
    instance = tmp_path / "deeper" / "instance"
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance)})
    assert Path(app.instance_path) == instance
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600


def test_an_instance_folder_open_to_others_is_made_private(tmp_path, ordinary_umask):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    create_app({"TESTING": True, "INSTANCE_PATH": str(instance)})
    assert mode(instance) == 0o700


def test_the_sqlite_database_and_its_wal_and_shm_files_are_private(tmp_path, ordinary_umask):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")})
    database = tmp_path / "instance" / "chamber.sqlite"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE note (body TEXT)"))
        db.session.execute(sa.text("INSERT INTO note VALUES ('private')"))
        db.session.commit()
        files = {path.name: mode(path) for path in database.parent.glob("chamber.sqlite*")}
        db.session.remove()
        db.engine.dispose()
    assert files == {
        "chamber.sqlite": 0o600,
        "chamber.sqlite-wal": 0o600,
        "chamber.sqlite-shm": 0o600,
    }


def test_an_existing_database_open_to_others_is_made_private(tmp_path, ordinary_umask):
    database = tmp_path / "shared" / "chamber.sqlite"
    database.parent.mkdir()
    for name in ("chamber.sqlite", "chamber.sqlite-wal", "chamber.sqlite-shm"):
        (database.parent / name).touch(mode=0o644)
        (database.parent / name).chmod(0o644)
    create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        }
    )
    assert {path.name: mode(path) for path in database.parent.iterdir()} == {
        "chamber.sqlite": 0o600,
        "chamber.sqlite-wal": 0o600,
        "chamber.sqlite-shm": 0o600,
    }


def test_a_relative_sqlite_path_is_made_in_the_instance_folder_only(
    tmp_path, ordinary_umask, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": "sqlite:///relative.sqlite",
        }
    )
    assert mode(tmp_path / "instance" / "relative.sqlite") == 0o600
    assert not (tmp_path / "relative.sqlite").exists()


@pytest.mark.parametrize(
    "uri",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:////nonexistent-chamber-directory/chamber.sqlite",
        "postgresql+psycopg://postgres@127.0.0.1:1/chamber",
    ],
)
def test_databases_without_a_file_of_ours_are_left_alone(tmp_path, uri):
    create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"), "SQLALCHEMY_DATABASE_URI": uri}
    )
    assert not Path("/nonexistent-chamber-directory").exists()
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == ["secret_key"]
