"""The reference for `booking_load.py`: a bare Flask app with one route, served by the same gunicorn
settings as Chamber. Whatever the machine, Flask and gunicorn cannot go faster than this.

    gunicorn --chdir benchmarks hello_app:app
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, world!"
