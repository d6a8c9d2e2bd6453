"""`python -m outreach`."""

from outreach.cli.main import run

if __name__ == "__main__":
    run()
