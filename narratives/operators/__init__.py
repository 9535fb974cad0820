"""Operators: who runs the pages, read from when they post (timing) and from what they
post together (coordination)."""
