"""`python -m fogsim` runs the command line."""

from fogsim.cli import main

main()
