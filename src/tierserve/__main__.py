"""`python -m tierserve` runs the command-line interface."""

from tierserve.cli import main

main()
