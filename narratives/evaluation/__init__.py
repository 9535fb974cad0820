"""Evaluation harnesses: pivots, tagger, timing and coordination, with their committed
data. The pipeline never imports them."""
