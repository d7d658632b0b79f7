"""`chamber demo` really serves the site (and runs the worker beside it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.smtp_server import free_port


@pytest.mark.slow
def test_chamber_demo_serves_the_site_on_the_port_it_prints(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAMBER_", "FLASK_"))}
    env["CHAMBER_INSTANCE_PATH"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", "from chamber.cli import main; main()", "demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:  # noqa: S310
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the demo never answered"
        assert "Cybercrime seminar" in body
        # Links meant for other programs (the calendar subscription, emails) use the same port.
        assert f"webcal://127.0.0.1:{port}/calendar.ics" in body
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in output
    assert "Worker demo started" in output
