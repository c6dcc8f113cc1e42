"""`python -m gateway` runs the command line."""

from .cli import main

main()
