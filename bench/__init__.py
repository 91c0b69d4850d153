"""wool's benchmark suite: ``python -m bench`` (or ``nox -s bench``); see bench/README.md."""
