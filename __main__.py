"""`python -m synthgate ...` runs the CLI (tests and workers use it: no console script needed)."""

from synthgate.cli import main

main()
