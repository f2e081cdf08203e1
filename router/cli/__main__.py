"""`python -m router.cli`: the same as the `lead-router` console script."""

from router.cli.main import main

main()
