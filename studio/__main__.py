"""``python -m studio`` runs the command line."""

from .cli import app

app()
