"""Configuration comes from CHAMBER_* variables, is documented in one table, and refuses unsafe starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from chamber import create_app
from chamber.config import (
    SETTINGS,
    ConfigError,
    from_environment,
    from_instance_file,
    write_demo_settings,
)
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


def test_the_demo_keeps_an_earlier_demos_key(tmp_path, monkeypatch):
    """A demo set up before the settings file existed kept its key in `instance/secret_key`: the
    demo goes on using it (and `chamber demo` copies it into the file), so no one is logged out."""
    monkeypatch.delenv("CHAMBER_SECRET_KEY", raising=False)
    (tmp_path / "secret_key").write_text("an-earlier-demos-key-0123456789abcdef0123456789\n")
    app = create_app({"DEMO": True, "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SECRET_KEY"] == "an-earlier-demos-key-0123456789abcdef0123456789"
    fresh = create_app({"DEMO": True, "INSTANCE_PATH": str(tmp_path / "new")})
    assert len(fresh.config["SECRET_KEY"]) >= 40


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


# --- the instance folder's settings file ---------------------------------------------------------


def test_the_instance_settings_file_is_read_and_the_environment_overrides_it(tmp_path, monkeypatch):
    for variable in ("CHAMBER_SECRET_KEY", "CHAMBER_CHAMBER_NAME", "CHAMBER_WORKER_POLL_SECONDS"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "chamber.toml").write_text(
        'CHAMBER_SECRET_KEY = "from-the-file-0123456789abcdef0123456789"\n'
        'CHAMBER_NAME = "File Chamber"\n'
        "CHAMBER_WORKER_POLL_SECONDS = 7\n"
    )
    app = create_app({"INSTANCE_PATH": str(tmp_path)})  # production: the key comes from the file
    assert app.config["SECRET_KEY"] == "from-the-file-0123456789abcdef0123456789"
    assert app.config["CHAMBER_NAME"] == "File Chamber"
    assert app.config["WORKER_POLL_SECONDS"] == 7

    monkeypatch.setenv("CHAMBER_NAME", "Environment Chamber")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["CHAMBER_NAME"] == "Environment Chamber"
    assert (
        create_app({"INSTANCE_PATH": str(tmp_path), "CHAMBER_NAME": "Override"}).config[
            "CHAMBER_NAME"
        ]
        == "Override"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('CHAMBER_SECRET_KY = "typo"\n', "CHAMBER_SECRET_KY is not a Chamber setting"),
        ('CHAMBER_INSTANCE_PATH = "/elsewhere"\n', "can only come from the environment"),
        ('CHAMBER_PROXY_COUNT = "two"\n', "CHAMBER_PROXY_COUNT must be a whole number"),
        ("CHAMBER_NAME = [1, 2]\n", "must be a string, a number or true/false"),
        ("CHAMBER_NAME = \n", "could not be read"),
    ],
)
def test_a_bad_settings_file_is_refused_with_its_path_and_the_name(tmp_path, content, message):
    (tmp_path / "chamber.toml").write_text(content)
    with pytest.raises(ConfigError, match=message) as refused:
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})
    assert str(tmp_path / "chamber.toml") in str(refused.value)


def test_demo_settings_are_written_privately_once_and_never_overwrite_the_operators(tmp_path):
    written = write_demo_settings(tmp_path, {"CHAMBER_SECRET_KEY": 'k"ey\\with quotes'})
    assert written == ["CHAMBER_SECRET_KEY"]
    assert (tmp_path / "chamber.toml").stat().st_mode & 0o777 == 0o600
    assert from_instance_file(tmp_path)["SECRET_KEY"] == 'k"ey\\with quotes'
    # What is there stays; only what is missing is added (after a file with no final newline).
    with (tmp_path / "chamber.toml").open("a") as file:
        file.write('CHAMBER_NAME = "Mine"')
    assert write_demo_settings(
        tmp_path, {"CHAMBER_SECRET_KEY": "other", "CHAMBER_NAME": "Demo", "CHAMBER_TIMEZONE": "UTC"}
    ) == ["CHAMBER_TIMEZONE"]
    assert from_instance_file(tmp_path) == {
        "SECRET_KEY": 'k"ey\\with quotes',
        "CHAMBER_NAME": "Mine",
        "TIMEZONE": "UTC",
    }
    with pytest.raises(ConfigError, match="control characters"):
        write_demo_settings(tmp_path, {"CHAMBER_BASE_URL": "http://x\n[evil]"})


def _clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("CHAMBER_")}


@pytest.mark.slow
def test_after_the_demo_every_command_finds_its_settings_without_any_environment(tmp_path):
    """`chamber demo --no-serve` in a fresh folder, then `worker --once`, `routes` and
    `send-test-email` with no CHAMBER_* variable at all: each reads the demo's key and database
    from the instance folder. A copy of the package's location (a link) gives a fresh default
    instance folder, since CHAMBER_INSTANCE_PATH is not set either."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "chamber").symlink_to(Path(__file__).resolve().parent.parent / "chamber")
    env = {**_clean_environment(), "PYTHONPATH": str(source)}

    def chamber(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from chamber.cli import main; main()", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    demo = chamber("demo", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    settings = source / "instance" / "chamber.toml"
    assert settings.stat().st_mode & 0o777 == 0o600
    assert "CHAMBER_SECRET_KEY" in settings.read_text()
    assert f"sqlite:///{source / 'instance' / 'chamber.sqlite'}" in settings.read_text()

    for args in (["worker", "--once"], ["routes"], ["send-test-email", "me@example.org"]):
        result = chamber(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "CHAMBER_SECRET_KEY is not set" not in result.stderr
    assert "/healthz" in chamber("routes").stdout
    worker = chamber("worker", "--once")
    assert "1 sent" in worker.stdout, worker.stdout  # the test message, from the demo's database

    settings.unlink()  # production: no settings file, no key in the environment
    refused = chamber("routes")
    assert refused.returncode == 2
    assert "CHAMBER_SECRET_KEY is not set" in refused.stderr
