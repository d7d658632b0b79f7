"""gunicorn reads this file when started from this folder (`gunicorn --workers 3 wsgi:app`): it
warns at start when several workers would each keep their own rate-limit counters. Settings such as
`--workers` and `--bind` stay on the command line."""

import os

from chamber.config import shared_memory_warning


def on_starting(server) -> None:
    storage = os.environ.get("CHAMBER_RATELIMIT_STORAGE_URL") or "memory://"
    warning = shared_memory_warning(storage, server.cfg.workers)
    if warning:
        server.log.warning("%s", warning)
