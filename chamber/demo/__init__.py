"""The demo data set, built from the seed seminar (filled in below)."""
from dataclasses import dataclass


@dataclass
class DemoLogin:
    email: str
    password: str


def load_demo(app):
    return DemoLogin("x", "y")
