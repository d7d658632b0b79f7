"""Configuration, in order (a later source wins): safe defaults, the instance folder's settings
file (`chamber.toml`, which `chamber demo` writes), `CHAMBER_*` environment variables, then
explicit overrides (tests)."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(RuntimeError):
    """Raised when the application cannot start with the configuration it was given."""


# (environment variable, Flask config key, default, kind): the one table the README documents.
SETTINGS: list[tuple[str, str, Any, str]] = [
    ("CHAMBER_DATABASE_URL", "SQLALCHEMY_DATABASE_URI", None, "str"),
    ("CHAMBER_SECRET_KEY", "SECRET_KEY", None, "str"),
    ("CHAMBER_BASE_URL", "BASE_URL", "http://127.0.0.1:5000", "str"),
    ("CHAMBER_TIMEZONE", "TIMEZONE", "Europe/London", "str"),
    ("CHAMBER_NAME", "CHAMBER_NAME", "Hertfordshire Chamber of Commerce", "str"),
    ("CHAMBER_COUNTRY", "COUNTRY", "GB", "str"),
    ("CHAMBER_CURRENCY", "CURRENCY", "GBP", "str"),
    ("CHAMBER_BRAND_COLOUR", "BRAND_COLOUR", "#1d4f91", "str"),
    ("CHAMBER_RATELIMIT_STORAGE_URL", "RATELIMIT_STORAGE_URI", "memory://", "str"),
    ("CHAMBER_RATELIMIT_KEY_PREFIX", "RATELIMIT_KEY_PREFIX", "chamber", "str"),
    ("CHAMBER_LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes", "str"),
    (
        "CHAMBER_LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES",
        "LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES",
        "50 per 15 minutes",
        "str",
    ),
    ("CHAMBER_LOGIN_LIMIT_PER_ADDRESS", "LOGIN_LIMIT_PER_ADDRESS", "20 per 15 minutes", "str"),
    (
        "CHAMBER_LOGIN_CODE_LIMIT_PER_ACCOUNT",
        "LOGIN_CODE_LIMIT_PER_ACCOUNT",
        "5 per 15 minutes",
        "str",
    ),
    (
        "CHAMBER_PASSWORD_RESET_LIMIT_PER_ADDRESS",
        "PASSWORD_RESET_LIMIT_PER_ADDRESS",
        "5 per hour",
        "str",
    ),
    ("CHAMBER_AUDIT_RETENTION_MONTHS", "AUDIT_RETENTION_MONTHS", 24, "int"),
    ("CHAMBER_BOOKING_LIMIT_PER_ADDRESS", "BOOKING_LIMIT_PER_ADDRESS", "20 per hour", "str"),
    ("CHAMBER_SUBSCRIBE_LIMIT_PER_ADDRESS", "SUBSCRIBE_LIMIT_PER_ADDRESS", "10 per hour", "str"),
    ("CHAMBER_API_LIMIT_PER_ADDRESS", "API_LIMIT_PER_ADDRESS", "120 per minute", "str"),
    ("CHAMBER_PROXY_COUNT", "PROXY_COUNT", 0, "int"),
    ("CHAMBER_CACHE_URL", "CACHE_URL", "simple://", "str"),
    ("CHAMBER_CACHE_SECONDS", "CACHE_SECONDS", 60, "int"),
    ("CHAMBER_CACHE_ENTRIES", "CACHE_ENTRIES", 2000, "int"),
    ("CHAMBER_PROXY_CACHE_SECONDS", "PROXY_CACHE_SECONDS", 30, "int"),
    ("CHAMBER_INSTANCE_PATH", "INSTANCE_PATH", None, "str"),
    ("CHAMBER_MAIL_BACKEND", "MAIL_BACKEND", "file", "str"),
    (
        "CHAMBER_MAIL_FROM",
        "MAIL_FROM",
        "Hertfordshire Chamber of Commerce <events@chamber.example>",
        "str",
    ),
    ("CHAMBER_MAIL_REPLY_TO", "MAIL_REPLY_TO", None, "str"),
    ("CHAMBER_MAIL_FILE_PATH", "MAIL_FILE_PATH", None, "str"),
    ("CHAMBER_SMTP_HOST", "SMTP_HOST", "localhost", "str"),
    ("CHAMBER_SMTP_PORT", "SMTP_PORT", 587, "int"),
    ("CHAMBER_SMTP_SECURITY", "SMTP_SECURITY", "starttls", "str"),
    ("CHAMBER_SMTP_USERNAME", "SMTP_USERNAME", None, "str"),
    ("CHAMBER_SMTP_PASSWORD", "SMTP_PASSWORD", None, "str"),
    ("CHAMBER_SMTP_TIMEOUT", "SMTP_TIMEOUT", 30, "int"),
    ("CHAMBER_MAIL_MAX_ATTEMPTS", "MAIL_MAX_ATTEMPTS", 8, "int"),
    ("CHAMBER_MAIL_RETRY_BASE_SECONDS", "MAIL_RETRY_BASE_SECONDS", 60, "int"),
    ("CHAMBER_MAIL_RETRY_MAX_SECONDS", "MAIL_RETRY_MAX_SECONDS", 6 * 3600, "int"),
    ("CHAMBER_MAIL_LEASE_SECONDS", "MAIL_LEASE_SECONDS", 300, "int"),
    ("CHAMBER_BULK_PER_MINUTE", "BULK_PER_MINUTE", 600, "int"),
    ("CHAMBER_WORKER_POLL_SECONDS", "WORKER_POLL_SECONDS", 5, "int"),
    ("CHAMBER_HEALTH_WORKER_STALE_SECONDS", "HEALTH_WORKER_STALE_SECONDS", 300, "int"),
    ("CHAMBER_HEALTH_MAIL_BACKLOG_SECONDS", "HEALTH_MAIL_BACKLOG_SECONDS", 900, "int"),
    ("CHAMBER_HEALTH_MAIL_BACKLOG_COUNT", "HEALTH_MAIL_BACKLOG_COUNT", 500, "int"),
    ("CHAMBER_LINKCHECK_ALLOW_PRIVATE", "LINKCHECK_ALLOW_PRIVATE", False, "bool"),
    ("CHAMBER_LINKCHECK_CONCURRENCY", "LINKCHECK_CONCURRENCY", 20, "int"),
    ("CHAMBER_LINKCHECK_PER_HOST", "LINKCHECK_PER_HOST", 2, "int"),
    ("CHAMBER_LINKCHECK_TIMEOUT", "LINKCHECK_TIMEOUT", 10, "float"),
    # Retention (docs/privacy.md, "Retention"): how long each kind of personal data is kept before
    # the worker's daily run anonymises it; 0 keeps it until someone is erased.
    ("CHAMBER_RETAIN_DELEGATES_MONTHS", "RETAIN_DELEGATES_MONTHS", 24, "int"),
    ("CHAMBER_RETAIN_NEEDS_MONTHS", "RETAIN_NEEDS_MONTHS", 1, "int"),
    ("CHAMBER_RETAIN_SURVEY_TEXT_MONTHS", "RETAIN_SURVEY_TEXT_MONTHS", 12, "int"),
    ("CHAMBER_RETAIN_OUTBOX_DAYS", "RETAIN_OUTBOX_DAYS", 90, "int"),
    ("CHAMBER_RETAIN_LINK_CHECKS_DAYS", "RETAIN_LINK_CHECKS_DAYS", 180, "int"),
]

RETENTION_SETTINGS = (
    "RETAIN_DELEGATES_MONTHS",
    "RETAIN_NEEDS_MONTHS",
    "RETAIN_SURVEY_TEXT_MONTHS",
    "RETAIN_OUTBOX_DAYS",
    "RETAIN_LINK_CHECKS_DAYS",
    "AUDIT_RETENTION_MONTHS",
)

MAIL_BACKENDS = ("smtp", "file", "console", "memory")
RATELIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix")
RATE_LIMITS = (
    "LOGIN_LIMIT_PER_ACCOUNT",
    "LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES",
    "LOGIN_LIMIT_PER_ADDRESS",
    "LOGIN_CODE_LIMIT_PER_ACCOUNT",
    "PASSWORD_RESET_LIMIT_PER_ADDRESS",
    "BOOKING_LIMIT_PER_ADDRESS",
    "SUBSCRIBE_LIMIT_PER_ADDRESS",
    "API_LIMIT_PER_ADDRESS",
)
SMTP_SECURITY = ("starttls", "tls", "none")
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def from_environment(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, Any]:
    """Read every `CHAMBER_*` setting that is set, converted to its kind."""
    values: dict[str, Any] = {}
    for variable, key, _default, kind in SETTINGS:
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        if kind == "int":
            try:
                values[key] = int(raw)
            except ValueError as error:
                raise ConfigError(f"{variable} must be a whole number, not {raw!r}.") from error
        elif kind == "float":
            try:
                values[key] = float(raw)
            except ValueError as error:
                raise ConfigError(f"{variable} must be a number, not {raw!r}.") from error
        elif kind == "bool":
            if raw.strip().lower() not in BOOLEANS:
                raise ConfigError(f"{variable} must be true or false, not {raw!r}.")
            values[key] = BOOLEANS[raw.strip().lower()]
        else:
            values[key] = raw
    return values


SETTINGS_FILE = "chamber.toml"


def from_instance_file(instance_path: Path) -> dict[str, Any]:
    """The settings in the instance folder's `chamber.toml`, or none when there is no such file.
    It uses the environment variables' names (`CHAMBER_SECRET_KEY = "..."`) and their checks;
    a name Chamber does not know, or a value that is not a string, number or true/false, is
    refused with the file and the name given, so that a typing mistake does not pass unseen."""
    path = instance_path / SETTINGS_FILE
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path} could not be read: {error}") from error
    known = {variable for variable, *_ in SETTINGS} - {"CHAMBER_INSTANCE_PATH"}
    values: dict[str, str] = {}
    for name, value in raw.items():
        if name not in known:
            raise ConfigError(
                f"{path}: {name} is not a Chamber setting (the settings are listed in the README; "
                "CHAMBER_INSTANCE_PATH can only come from the environment)."
            )
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            raise ConfigError(f"{path}: {name} must be a string, a number or true/false.")
    try:
        return from_environment(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def write_demo_settings(instance_path: Path, settings: dict[str, str]) -> list[str]:
    """Add to the instance folder's settings file (created 0600) each of `settings` it does not
    hold yet, so that every later command (`chamber worker`, `chamber routes` ...) finds the
    demo's key and database. Returns the names added."""
    path = instance_path / SETTINGS_FILE
    present = from_instance_file(instance_path)
    keys = {variable: key for variable, key, *_ in SETTINGS}
    missing = {name: value for name, value in settings.items() if keys[name] not in present}
    if not missing:
        return []
    make_private_folder(instance_path)
    new = not path.exists()
    ends_a_line = new or path.read_bytes().endswith(b"\n") or not path.read_bytes()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    _owner_only(path)
    with os.fdopen(descriptor, "a", encoding="utf-8") as file:
        if new:
            file.write(
                "# Chamber's settings for this instance folder, written by `chamber demo`.\n"
                "# CHAMBER_* environment variables override what is here (README, Configuration).\n"
            )
        elif not ends_a_line:
            file.write("\n")
        for name, value in missing.items():
            file.write(f"{name} = {_toml_string(value)}\n")
    return list(missing)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in escaped):
        raise ConfigError("A setting cannot hold control characters.")
    return f'"{escaped}"'


def defaults() -> dict[str, Any]:
    values = {key: default for _var, key, default, _kind in SETTINGS if default is not None}
    values.update(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=False,  # core.origin checks Origin (else Referer) over http and https
        RATELIMIT_HEADERS_ENABLED=True,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        DEMO=False,
        # Werkzeug's scrypt (N=2^15, r=8, p=1). Tests pass a cheaper cost of the same algorithm.
        PASSWORD_HASH_METHOD="scrypt",  # noqa: S106 - an algorithm name, not a password
    )
    return values


def finalise(config: dict[str, Any], instance_path: Path, *, testing: bool, demo: bool) -> None:
    """Fill in what depends on other settings and refuse a configuration that is unsafe."""
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance_path / 'chamber.sqlite'}"
    if not config.get("SECRET_KEY"):
        if not (testing or demo):
            raise ConfigError(
                "CHAMBER_SECRET_KEY is not set. Chamber refuses to start without it, because it "
                "signs sessions and form tokens. Generate one with\n"
                '  python -c "import secrets; print(secrets.token_urlsafe(48))"\n'
                f"and set it in the environment or in {instance_path / SETTINGS_FILE} (or run "
                "`chamber demo` to try Chamber locally)."
            )
        config["SECRET_KEY"] = (
            demo_secret_key(instance_path) if testing else _first_demo_key(instance_path)
        )
    try:
        ZoneInfo(config["TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(
            f"CHAMBER_TIMEZONE {config['TIMEZONE']!r} is not a known time zone."
        ) from error
    if not re.fullmatch(r"[A-Z]{2}", str(config["COUNTRY"])):
        raise ConfigError("CHAMBER_COUNTRY must be a two-letter country code like GB.")
    if not re.fullmatch(r"[A-Z]{3}", str(config["CURRENCY"])):
        raise ConfigError("CHAMBER_CURRENCY must be a three-letter currency code like GBP.")
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(config["BRAND_COLOUR"])):
        raise ConfigError("CHAMBER_BRAND_COLOUR must be a colour like #1d4f91.")
    if config["MAIL_BACKEND"] not in MAIL_BACKENDS:
        raise ConfigError(f"CHAMBER_MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}.")
    if config["SMTP_SECURITY"] not in SMTP_SECURITY:
        raise ConfigError(f"CHAMBER_SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY)}.")
    check_rate_limits(config)
    for name in (
        "LINKCHECK_CONCURRENCY",
        "LINKCHECK_PER_HOST",
        "LINKCHECK_TIMEOUT",
        "HEALTH_WORKER_STALE_SECONDS",
        "HEALTH_MAIL_BACKLOG_SECONDS",
        "HEALTH_MAIL_BACKLOG_COUNT",
        "AUDIT_RETENTION_MONTHS",
    ):
        if not config[name] > 0:
            raise ConfigError(f"CHAMBER_{name} must be above 0.")
    for name in RETENTION_SETTINGS:
        if not 0 <= config[name] <= 1200:
            raise ConfigError(f"CHAMBER_{name} must be 0 (keep) or a whole number up to 1200.")
    if not config["BULK_PER_MINUTE"] >= 0:
        raise ConfigError("CHAMBER_BULK_PER_MINUTE must be 0 (no limit) or more.")
    secure = str(config["BASE_URL"]).startswith("https://")
    config.setdefault("SESSION_COOKIE_SECURE", secure)
    config.setdefault("REMEMBER_COOKIE_SECURE", secure)
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")


def check_rate_limits(config: dict[str, Any]) -> None:
    """Refuse a rate-limit store or limit Chamber cannot use, at start rather than at the first
    login; a Redis store gets short time-outs, so that a lost Redis cannot hang every request."""
    storage = str(config["RATELIMIT_STORAGE_URI"])
    scheme = storage.partition("://")[0]
    if "://" not in storage or scheme not in RATELIMIT_STORAGE_SCHEMES:
        raise ConfigError(
            "CHAMBER_RATELIMIT_STORAGE_URL must be memory:// (one web process) or "
            "redis://host:6379/0 (counters shared by every process)."
        )
    if scheme != "memory":
        config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2}
        )
    # A store that stops answering lets requests through (and logs each one) rather than
    # refusing every login and booking: the door team must still be able to log in.
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    for name in RATE_LIMITS:
        try:
            limits.parse_many(str(config[name]))
        except ValueError as error:
            raise ConfigError(
                f"CHAMBER_{name} must be a limit like '5 per 15 minutes', not {config[name]!r}."
            ) from error


def shared_memory_warning(storage_uri: str, processes: int | None) -> str | None:
    """The warning for web processes that each keep their own counters, or None when they don't.
    `processes` is how many there are, or None for "more than one" when the number is not known."""
    if processes == 1 or not str(storage_uri).startswith("memory://"):
        return None
    how_many = f"{processes} web processes" if processes else "Several web processes"
    return (
        f"{how_many} with CHAMBER_RATELIMIT_STORAGE_URL=memory:// each count on their own, so "
        "every rate limit lets through that many times what it says. Set "
        "CHAMBER_RATELIMIT_STORAGE_URL=redis://host:6379/0 (docs/deployment.md)."
    )


def _first_demo_key(instance_path: Path) -> str:
    """The demo's key before it has a settings file: the one an older demo kept in
    `instance/secret_key` (so its logins survive), else a new one; `chamber demo` then writes it
    to the settings file."""
    legacy = instance_path / "secret_key"
    if legacy.exists():
        return legacy.read_text().strip()
    return secrets.token_urlsafe(48)


def demo_secret_key(instance_path: Path) -> str:
    """A key generated once and kept in the instance folder, for tests only."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    make_private_folder(instance_path)
    key = secrets.token_urlsafe(48)
    # Created 0600, never readable by others even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key


# --- files the app creates are private to the user it runs as -------------------------------------


def make_private_folder(path: Path) -> None:
    """Create `path` readable by its owner only (0700), or take the group's and others' access
    away from one that exists: it holds the database, the demo's key and passwords, and mail."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path)


def make_private_database(uri: str, instance_path: Path) -> None:
    """Create a SQLite database file as 0600 before SQLite does (with the umask's 0644): SQLite
    gives its -wal and -shm files the database file's own mode, so all three stay private.
    A relative path is in the instance folder, as Flask-SQLAlchemy reads it."""
    try:
        url = make_url(uri)
    except ArgumentError:
        return
    database = url.database or ""
    if (
        url.get_backend_name() != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return
    path = Path(database)
    if not path.is_absolute():
        path = instance_path / path
    if not path.parent.is_dir():
        return  # SQLite will report the missing folder when it is used (see /healthz)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _owner_only(file)


def _owner_only(path: Path) -> None:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError:  # absent, or owned by someone else (a shared folder the operator manages)
        pass
