"""``python -m bench``: run the benchmark suite (``--help`` for the options)."""

from __future__ import annotations

if __name__ == "__main__":  # spawned ProcessPoolExecutor workers import this module too
    from bench.run import main

    raise SystemExit(main())
