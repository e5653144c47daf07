"""`python -m worldmodels_bench TARGET WORKERS ROOT [--quick]`: one target, in this process."""

from .run import main

main()
