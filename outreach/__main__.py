"""`python -m outreach`."""

from outreach.cli.main import run

run()
