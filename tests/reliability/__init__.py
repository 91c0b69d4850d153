"""Reliability under faults, load and bad input (issue 7): the fast part of the suite.

The soak, which runs the same kinds of faults and load at scale, is ``tests/soak`` (run
with ``nox -s soak``).
"""
