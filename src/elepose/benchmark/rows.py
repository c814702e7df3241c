"""The one registry of the benchmark's run names, their labels and the report section each feeds.

Nothing else builds or parses a run name: the plan asks here for the name of a seed, a PCA
width, a camera distribution's lifter or an option, and the report asks here which runs make
up a table.
"""

from __future__ import annotations

__all__ = [
    "CACHE",
    "FLOW",
    "MAIN",
    "FP32",
    "FIXED_PRIOR",
    "FIXED_PRIOR_TRUE",
    "SUPERVISED",
    "OWN2D",
    "DOMAIN",
    "SPEED",
    "ACCURACY_ROWS",
    "ABLATIONS",
    "CAMERA_VARIANTS",
    "CAMERA_BASELINE",
    "seed_run",
    "pca_flow",
    "pca_lifter",
    "camera_cache",
    "camera_flow",
    "camera_run",
    "scale_flow",
    "option_run",
    "fit_run",
    "real_fit_run",
    "lifter_label",
    "section",
]

CACHE = "cache"  # the Bandai benchmark cache
FLOW = "flow"  # the main flow, 26 PCA bases
FLOW_NO_PCA = "flow-nopca"
MAIN = "elepose"  # ElePose, seed 0: the row every section compares against
FP32 = "elepose-fp32"
FIXED_PRIOR = "fixed-prior"  # no elevation branch, U(-20, 20) deg: Table 5's base + L_bone + PCA
FIXED_PRIOR_TRUE = "fixed-prior-true"  # no branch, the cameras' true N(12, 6) deg
SUPERVISED = "supervised"
OWN2D = "own2d"
DOMAIN = "domain"  # the cross-domain section
SPEED = "speed"
MAIN_PCA_BASES = 26

_LABELS = {
    MAIN: "ElePose (seed 0)",
    FP32: "ElePose, fp32",
    FIXED_PRIOR: "Fixed prior U(-20,20) deg, no elevation branch",
    FIXED_PRIOR_TRUE: "Fixed prior N(12,6) deg (the cameras' truth), no branch",
    SUPERVISED: "Supervised bound (3D ground truth)",
    "base": "base (L_NF+L_3D+L_def+L_2D), no PCA, no elevation",
    "base+bone": "base + L_bone, no PCA, no elevation",
    "base+bone+elevation": "base + L_bone + elevation, no PCA",
}

ACCURACY_ROWS = (MAIN, FP32, FIXED_PRIOR, FIXED_PRIOR_TRUE, SUPERVISED)
"""Section 1's accuracy tables, in this order."""

ABLATIONS = (
    ("base", "base"),
    ("base+bone", "base+bone"),
    ("base+bone+elevation", "base+bone+elevation"),
    (FIXED_PRIOR, "base+bone+pca"),
    (MAIN, "ours"),
)
"""Section 1's ablation table: (run, the paper's Table 5 row)."""

CAMERA_VARIANTS = (MAIN, FIXED_PRIOR, FIXED_PRIOR_TRUE)
"""The lifters section 8 trains per camera distribution."""

CAMERA_BASELINE = "cameras-default-elepose"
"""Section 9's baseline: section 8's ElePose on the default cameras."""


def seed_run(seed: int) -> str:
    """ElePose at ``seed`` (section 6): ``elepose`` for seed 0, else ``elepose-seedS``."""
    return MAIN if seed == 0 else f"{MAIN}-seed{seed}"


def pca_flow(bases: int | None) -> str:
    """The flow of ``bases`` PCA bases (None: no PCA)."""
    if bases is None:
        return FLOW_NO_PCA
    return FLOW if bases == MAIN_PCA_BASES else f"flow-pca{bases}"


def pca_lifter(bases: int | None) -> str:
    """Section 2's lifter on the flow of ``bases`` PCA bases (None: Table 5's no-PCA ElePose)."""
    if bases is None:
        return "base+bone+elevation"
    return MAIN if bases == MAIN_PCA_BASES else f"pca{bases}"


def camera_cache(distribution: str) -> str:
    """Section 8's cache of a camera distribution (the default cameras use the benchmark cache)."""
    return CACHE if distribution == "default" else f"cache-{distribution}"


def camera_flow(distribution: str) -> str:
    """Section 8's flow of a camera distribution."""
    return FLOW if distribution == "default" else f"flow-{distribution}"


def camera_run(distribution: str, variant: str) -> str:
    """Section 8's ``variant`` (one of :data:`CAMERA_VARIANTS`) on ``distribution``'s cameras."""
    return f"cameras-{distribution}-{variant}"


def scale_flow(scale: str) -> str:
    """Section 9's flow on 2D normalised by ``scale``."""
    return f"flow-scale-{scale}"


def option_run(option: str) -> str:
    """Section 9's ElePose with ``option`` changed."""
    return f"option-{option}"


def fit_run(start: str, share: float) -> str:
    """Section 7's fit (``start``: scratch or init) on ``share`` of the clips."""
    return f"fit-{start}-{round(100 * share)}pct"


def real_fit_run(start: str) -> str:
    """Section 7's fit on the real detector file."""
    return f"real-fit-{start}"


def lifter_label(name: str, pca_bases: int | None = None, seed: int | None = None) -> str:
    """The report's label of a lifter run of sections 1-6 (the plan passes the PCA bases or seed it used)."""
    if seed is not None and seed != 0:
        return f"ElePose (seed {seed})"
    if pca_bases is not None and pca_bases != MAIN_PCA_BASES:
        return f"ElePose, {pca_bases} PCA bases"
    return _LABELS.get(name, name)


def section(name: str) -> str:
    """Which part of the report a lifter run belongs to: ``main`` (sections 1, 3, 4, 6),
    ``pca`` (section 2), ``cameras`` (section 8) or ``options`` (section 9)."""
    if name.startswith("cameras-"):
        return "cameras"
    if name.startswith("option-"):
        return "options"
    if name.startswith("pca"):
        return "pca"
    return "main"
