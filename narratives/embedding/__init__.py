"""Per-post text features: language, sentence embeddings, the models behind them
and their caches."""
