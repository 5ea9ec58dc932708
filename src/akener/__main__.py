"""``python -m akener`` runs the CLI."""

from akener.cli import main

main()
