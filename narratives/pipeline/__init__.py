"""The batch driver: reading, per-post work (locally or on Ray), pivots and the output folder, with resume."""
