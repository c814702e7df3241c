"""Inference on people's own 2D: the ``Lifter`` API, missing-joint filling, pictures."""
