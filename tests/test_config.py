"""Configuration comes from CHAMBER_* variables, is documented in one table, and refuses unsafe starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chamber import create_app
from chamber.config import SETTINGS, ConfigError, from_environment

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
