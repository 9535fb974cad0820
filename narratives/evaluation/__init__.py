"""Evaluation harnesses (never imported by the pipeline): pivots, tagger, timing, coordination, with their committed data."""
