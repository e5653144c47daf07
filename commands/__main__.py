"""`python -m worldmodels_cli`: the `worldmodels` command."""

from .cli import main

main()
