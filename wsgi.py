"""The WSGI entry point: `gunicorn wsgi:app`."""

from chamber import create_app

app = create_app()
