"""Training: models, datasets, loops and evaluation (needs torch: the `train` extra)."""
