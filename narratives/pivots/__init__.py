"""Pivots: per-page timelines, their topic and language signals, and the change-point
detector."""
