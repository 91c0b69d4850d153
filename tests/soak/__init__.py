"""The soak: wool under sustained load (``nox -s soak``, ``python -m tests.soak.soak``)."""
