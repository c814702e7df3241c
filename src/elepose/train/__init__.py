"""Training: the ElePose objective (Eq. 5-13), the flow and lifter loops, per-epoch logs."""
