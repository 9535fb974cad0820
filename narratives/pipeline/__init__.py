"""The batch driver: reading, the per-post work (in this process or on Ray), pivots and
the output folder, with resume."""
