"""Tests of the monorepo layout, the wheels and the generated wire modules."""
