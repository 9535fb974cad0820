"""Operators: who runs the pages, read from when they post (timing) and what they post together (coordination)."""
