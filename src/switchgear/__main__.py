"""`python -m switchgear` runs the CLI."""

from switchgear.cli.main import main

main()
