"""3D pose metrics: MPJPE, N-MPJPE, PA-MPJPE, N-PCK, AUC, CPS and ROC AUC (SPEC section 7).

Every function takes ``pred, gt: (N, J, 3)`` in any consistent unit (metres in this project,
``J = 17`` for the H36M skeleton) and reports millimetres: errors are multiplied by
``unit_to_mm`` (1000 for metres) and thresholds are given in mm. Poses are centred on joint 0
(the pelvis) before any comparison. Everything is vectorised over poses (no Python loop).

Two protocols, so results can be reported side by side:

- ``"standard"``: N-MPJPE scales the prediction by the least-squares optimum
  ``<pred, gt> / <pred, pred>`` (Rhodin et al., CVPR 2018); PA-MPJPE uses a similarity
  Procrustes alignment whose rotation is proper (det = +1); CPS aligns by that Procrustes;
  PCK and AUC count a joint as correct when its error is ``<=`` the threshold.
- ``"elepose-code"``: what the authors' released evaluation does *(code)*: reflections allowed
  in Procrustes, N-MPJPE scale ``||gt||_F / ||pred||_F``, CPS on the raw pelvis-centred
  prediction (no alignment), PCK and AUC with a strict ``<`` (so a perfect prediction scores
  an AUC of 30/31 of 100 %).

Both protocols compute N-PCK and AUC on the N-aligned pose (with that protocol's scale) over
all ``J`` joints, the pelvis included.

CPS, the Correct Poses Score (Wandt et al., CanonPose, CVPR 2021): a pose is correct at
threshold ``t`` when all its joints are within ``t``; CPS is the area under the fraction of
correct poses over ``t`` in [0, 300] mm, so a perfect prediction scores 300. The area is
computed exactly rather than on a grid: a pose with largest joint error ``e`` is correct for
``t >= e``, so it contributes ``clip(300 - e, 0, 300)`` mm, and CPS is the mean of that over
poses (the limit of any fine-grid quadrature). The authors' code instead sums the indicator at
the 301 integer thresholds 0..300 mm (perfect = 301); the two differ by less than 1 per pose.

>>> import numpy as np
>>> gt = np.random.default_rng(0).normal(size=(2, 17, 3))
>>> round(evaluate_poses(gt, gt)["cps"], 6)
300.0
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "PROTOCOLS",
    "METRIC_COLUMNS",
    "AUC_THRESHOLDS_MM",
    "CPS_MAX_THRESHOLD_MM",
    "mpjpe",
    "n_mpjpe",
    "pa_mpjpe",
    "optimal_scale",
    "procrustes_transform",
    "procrustes_align",
    "n_pck",
    "auc",
    "cps",
    "per_pose_errors",
    "evaluate_poses",
    "roc_auc",
]

PROTOCOLS = ("standard", "elepose-code")
"""Evaluation protocols: the standard definitions and the authors' released code."""
METRIC_COLUMNS = (
    ("mpjpe", "MPJPE"),
    ("n_mpjpe", "N-MPJPE"),
    ("pa_mpjpe", "PA-MPJPE"),
    ("n_pck", "N-PCK"),
    ("auc", "AUC"),
    ("cps", "CPS"),
)
"""The keys of :func:`evaluate_poses` with their printed names, in the order every table shows them."""
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)
"""PCK thresholds averaged by :func:`auc` (mm)."""
CPS_MAX_THRESHOLD_MM = 300.0
"""Upper end of the CPS threshold range (mm); a perfect prediction scores this."""


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def _as_poses(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to float64 ``(N, J, 3)`` arrays."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: pred {p.shape}, gt {g.shape}")
    if p.ndim != 3 or p.shape[-1] != 3 or p.shape[1] < 1:
        raise ValueError(f"expected poses of shape (N, J, 3); got pred {p.shape}, gt {g.shape}")
    if p.shape[0] == 0:
        raise ValueError("pred and gt hold no poses (N = 0)")
    for name, a in (("pred", p), ("gt", g)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf values")
    return p, g


def _centre(poses: np.ndarray) -> np.ndarray:
    return poses - poses[:, :1]


def _joint_errors(p: np.ndarray, g: np.ndarray, unit_to_mm: float) -> np.ndarray:
    return np.linalg.norm(p - g, axis=-1) * unit_to_mm


def _scale(p: np.ndarray, g: np.ndarray, protocol: str) -> np.ndarray:
    """Per-pose scale of centred ``p`` towards centred ``g`` -> ``(N,)``; 1 when ``p`` is all zero."""
    if protocol == "standard":
        num = np.einsum("njk,njk->n", p, g)
        den = np.einsum("njk,njk->n", p, p)
    else:
        num = np.sqrt(np.einsum("njk,njk->n", g, g))
        den = np.sqrt(np.einsum("njk,njk->n", p, p))
    return np.divide(num, den, out=np.ones_like(num), where=den > 0)


def _n_aligned(pred: np.ndarray, gt: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    _check_protocol(protocol)
    p, g = _as_poses(pred, gt)
    p, g = _centre(p), _centre(g)
    return p * _scale(p, g, protocol)[:, None, None], g


def mpjpe(pred: np.ndarray, gt: np.ndarray, unit_to_mm: float = 1000.0) -> np.ndarray:
    """Mean per-joint position error of pelvis-centred poses ``(N, J, 3)`` -> ``(N,)`` mm."""
    p, g = _as_poses(pred, gt)
    return _joint_errors(_centre(p), _centre(g), unit_to_mm).mean(axis=1)


def optimal_scale(pred: np.ndarray, gt: np.ndarray, protocol: str = "standard") -> np.ndarray:
    """Scale applied to the pelvis-centred ``pred (N, J, 3)`` by N-MPJPE -> ``(N,)``.

    ``"standard"``: ``<pred, gt> / <pred, pred>``, which minimises the summed squared joint
    error; ``"elepose-code"``: ``||gt||_F / ||pred||_F``. A prediction with every joint on
    the pelvis gets scale 1.
    """
    _check_protocol(protocol)
    p, g = _as_poses(pred, gt)
    return _scale(_centre(p), _centre(g), protocol)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0) -> np.ndarray:
    """MPJPE after scaling the pelvis-centred prediction by :func:`optimal_scale` -> ``(N,)`` mm."""
    p, g = _n_aligned(pred, gt, protocol)
    return _joint_errors(p, g, unit_to_mm).mean(axis=1)


def procrustes_transform(
    pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity transform taking ``pred (N, J, 3)`` closest to ``gt`` in least squares.

    Returns ``rotation (N, 3, 3)``, ``scale (N,)`` and ``translation (N, 3)`` such that
    ``aligned_j = scale * rotation @ pred_j + translation``. Without ``allow_reflection`` the
    rotation is proper (det = +1: the last singular direction is flipped when the unconstrained
    optimum is a reflection, Umeyama 1991); with it the optimum over all orthogonal matrices is
    taken. A prediction with all joints at one point gets scale 0.
    """
    p, g = _as_poses(pred, gt)
    mu_p, mu_g = p.mean(axis=1), g.mean(axis=1)
    x, y = p - mu_p[:, None], g - mu_g[:, None]
    u, s, vt = np.linalg.svd(np.einsum("nji,njk->nik", y, x))  # Y^T X = U S V^T
    d = np.ones_like(s)
    if not allow_reflection:
        d[:, -1] = np.sign(np.linalg.det(u @ vt))
        d[d[:, -1] == 0, -1] = 1.0
    rotation = (u * d[:, None, :]) @ vt
    norm_x = np.einsum("njk,njk->n", x, x)
    trace = np.einsum("nk,nk->n", s, d)
    scale = np.divide(trace, norm_x, out=np.zeros_like(trace), where=norm_x > 0)
    translation = mu_g - scale[:, None] * np.einsum("nik,nk->ni", rotation, mu_p)
    return rotation, scale, translation


def procrustes_align(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = False) -> np.ndarray:
    """``pred (N, J, 3)`` aligned to ``gt`` by :func:`procrustes_transform` -> ``(N, J, 3)``."""
    rotation, scale, translation = procrustes_transform(pred, gt, allow_reflection)
    p = np.asarray(pred, dtype=np.float64)
    return scale[:, None, None] * np.einsum("nik,njk->nji", rotation, p) + translation[:, None]


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0) -> np.ndarray:
    """MPJPE after similarity Procrustes alignment -> ``(N,)`` mm.

    Reflections are allowed only under the ``"elepose-code"`` protocol.
    """
    _check_protocol(protocol)
    p, g = _as_poses(pred, gt)
    aligned = procrustes_align(p, g, allow_reflection=protocol == "elepose-code")
    return _joint_errors(aligned, g, unit_to_mm).mean(axis=1)


def _pck_fraction(errors_mm: np.ndarray, thresholds_mm: np.ndarray, protocol: str) -> np.ndarray:
    """Fraction of joints within each threshold -> ``thresholds_mm.shape``."""
    e = errors_mm.reshape(-1, 1)
    t = np.asarray(thresholds_mm, dtype=np.float64).reshape(1, -1)
    within = e < t if protocol == "elepose-code" else e <= t
    return within.mean(axis=0).reshape(np.shape(thresholds_mm))


def n_pck(
    pred: np.ndarray,
    gt: np.ndarray,
    threshold_mm: float = 150.0,
    protocol: str = "standard",
    unit_to_mm: float = 1000.0,
) -> float:
    """Percent of joints (all poses, all ``J`` joints) within ``threshold_mm`` on the N-aligned pose."""
    p, g = _n_aligned(pred, gt, protocol)
    return float(100.0 * _pck_fraction(_joint_errors(p, g, unit_to_mm), np.array(threshold_mm), protocol))


def auc(pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0) -> float:
    """Mean N-PCK in percent over :data:`AUC_THRESHOLDS_MM` (0..150 mm, 31 steps)."""
    p, g = _n_aligned(pred, gt, protocol)
    return float(100.0 * _pck_fraction(_joint_errors(p, g, unit_to_mm), AUC_THRESHOLDS_MM, protocol).mean())


def cps(pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0) -> float:
    """Correct Poses Score in mm (0..300; perfect = 300), exact area (see the module docstring).

    ``"standard"`` measures joint errors after proper similarity Procrustes alignment,
    ``"elepose-code"`` on the raw pelvis-centred prediction.
    """
    _check_protocol(protocol)
    p, g = _as_poses(pred, gt)
    if protocol == "standard":
        errors = _joint_errors(procrustes_align(p, g), g, unit_to_mm)
    else:
        errors = _joint_errors(_centre(p), _centre(g), unit_to_mm)
    worst = errors.max(axis=1)
    return float(np.clip(CPS_MAX_THRESHOLD_MM - worst, 0.0, CPS_MAX_THRESHOLD_MM).mean())


def per_pose_errors(
    pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0
) -> dict[str, np.ndarray]:
    """Per-pose ``mpjpe``, ``n_mpjpe`` and ``pa_mpjpe`` arrays ``(N,)`` in mm (for box plots)."""
    _check_protocol(protocol)
    return {
        "mpjpe": mpjpe(pred, gt, unit_to_mm),
        "n_mpjpe": n_mpjpe(pred, gt, protocol, unit_to_mm),
        "pa_mpjpe": pa_mpjpe(pred, gt, protocol, unit_to_mm),
    }


def evaluate_poses(
    pred: np.ndarray, gt: np.ndarray, protocol: str = "standard", unit_to_mm: float = 1000.0
) -> dict[str, float]:
    """All metrics of SPEC section 7 as floats.

    Keys: ``mpjpe``, ``n_mpjpe``, ``pa_mpjpe`` (mean over poses, mm), ``n_pck`` (@150 mm, %),
    ``auc`` (%), ``cps`` (mm-threshold area, perfect = 300).
    """
    errors = per_pose_errors(pred, gt, protocol, unit_to_mm)
    result = {name: float(values.mean()) for name, values in errors.items()}
    result["n_pck"] = n_pck(pred, gt, 150.0, protocol, unit_to_mm)
    result["auc"] = auc(pred, gt, protocol, unit_to_mm)
    result["cps"] = cps(pred, gt, protocol, unit_to_mm)
    return result


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores (N,)`` detecting ``labels (N,)`` == True.

    Rank-based (Mann-Whitney U / (n_pos * n_neg)); tied scores get their average rank, so a
    tie between a positive and a negative counts one half. 1 = every positive scores higher.
    """
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels)
    if s.ndim != 1 or lab.shape != s.shape:
        raise ValueError(f"scores and labels must be 1-D of equal length; got {s.shape} and {lab.shape}")
    if lab.dtype != np.bool_:
        if not np.isin(lab, (0, 1)).all():
            raise ValueError("labels must be boolean (or 0/1)")
        lab = lab.astype(bool)
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or inf values")
    n_pos = int(lab.sum())
    n_neg = lab.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes; got {n_pos} positive and {n_neg} negative labels")
    ranks = rankdata(s)  # average ranks for ties, 1-based
    u = ranks[lab].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
