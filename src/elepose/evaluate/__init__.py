"""Evaluation: a lifter's accuracy, elevation and reliability on a split, and their figures."""
