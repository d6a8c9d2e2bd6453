"""`python -m outreach`."""

from outreach.cli.main import run

# The guard matters: a large import reads its file in a spawned process, which imports this module again.
if __name__ == "__main__":
    run()
