"""The self-contained HTML report of a scored folder."""
