"""elepose: unsupervised 3D human pose lifting with a learned elevation distribution.

Implements ElePose (Wandt, Little, Rhodin, CVPR 2022): a lifting network trained only on 2D
poses, scored by a normalizing flow on a PCA subspace of 2D poses, with a branch that predicts
the camera elevation and learns its distribution.
"""

__version__ = "0.1.0"

__all__ = ["Lifter", "LiftResult", "__version__"]


def __getattr__(name: str):
    """``elepose.Lifter`` and ``elepose.LiftResult``, imported on first use (keeps ``import elepose`` light)."""
    if name in ("Lifter", "LiftResult"):
        from elepose.lift import lifter as api

        return getattr(api, name)
    raise AttributeError(f"module 'elepose' has no attribute {name!r}")
