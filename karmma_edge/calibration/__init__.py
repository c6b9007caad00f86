"""Calibration sets drawn from the training split, and the readers that feed them to calibrators."""
