"""The benchmark's profiles: one :class:`Profile` per ``--profile``, made of per-section budgets.

Every budget counts training in epochs of ``epoch_samples`` random samples (None: one pass over
the training poses). A section whose budget is None is not run by that profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "FlowBudget",
    "LifterBudget",
    "EvaluationBudget",
    "SpeedBudget",
    "Own2dBudget",
    "DomainBudget",
    "CameraBudget",
    "Profile",
    "PROFILES",
]


@dataclass(frozen=True)
class FlowBudget:
    """Every flow of the benchmark (SPEC section 4): schedule, width, coupling blocks, rate."""

    epochs: int
    epoch_samples: int | None = None
    hidden: int = 1024
    blocks: int = 8
    lr: float = 1e-4
    batch_size: int = 256


@dataclass(frozen=True)
class LifterBudget:
    """Every lifter of sections 1-4 and 6 (SPEC section 5), and the per-epoch checks it logs."""

    epochs: int
    epoch_samples: int | None = None
    hidden: int = 1024
    lr: float = 2e-4
    batch_size: int = 256
    precision: str = "bf16"
    elevation_warmup_steps: int = 300
    check_samples: int = 2048  # test poses of the per-epoch check
    check_rotations: int = 10  # virtual views of its reliability calibration


@dataclass(frozen=True)
class EvaluationBudget:
    """The final evaluation of every lifter: test poses (None: all) and virtual views per pose."""

    samples: int | None = 8000
    rotations: int = 20


@dataclass(frozen=True)
class SpeedBudget:
    """Section 5: the timed training steps and lifts (medians of interleaved repeats)."""

    hidden: int = 1024  # lifter width of the speed measurements (the paper's)
    warmup_steps: int = 3
    steps: int = 50  # timed steps per repeat
    repeats: int = 3
    lift_poses: int = 4096
    lift_rotations: int = 16  # the default of `elepose lift` / Lifter.lift
    lift_rotations_paper: int = 100  # the paper's Sec. 4.3
    matmul_seconds: float = 0.5
    latency_repeats: int = 20


@dataclass(frozen=True)
class Own2dBudget:
    """Section 7, "Train on your own 2D": each fit's samples per stage and the shares of clips fitted on
    (``shares`` from scratch and with ``--init``; ``init_only_shares`` with ``--init`` alone)."""

    samples: int = 360_000
    shares: tuple[float, ...] = (0.1, 0.3, 1.0)
    # 1 % of dataset 1's 141 training clips is one clip (about 170 poses): the user with one video.
    # A fit from scratch refuses a single clip (too little to learn a flow and hold clips out).
    init_only_shares: tuple[float, ...] = (0.01,)
    # fit --init --distill (the transferred lifter's own cache) on these shares, at this weight.
    distill_shares: tuple[float, ...] = (0.01,)
    distill_weight: float = 1000.0


@dataclass(frozen=True)
class DomainBudget:
    """The cross-domain section (:mod:`elepose.benchmark.domain`): each fit's samples per stage and the
    shares of the target's training segments fitted with ``--init``, from scratch, and by each variant."""

    samples: int = 360_000
    init_shares: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0)
    scratch_shares: tuple[float, ...] = (1.0,)
    variant_shares: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0)


@dataclass(frozen=True)
class CameraBudget:
    """Sections 8 and 9: other camera-elevation distributions ``(name, mean deg, std deg)`` and the
    lifters' length (epochs of the lifter budget's ``epoch_samples``), width and rate there."""

    distributions: tuple[tuple[str, float, float], ...] = ()
    epochs: int = 6
    hidden: int = 512
    lr: float = 5e-4


@dataclass(frozen=True)
class Profile:
    """One benchmark profile: a budget per section, and which rows it trains."""

    name: str
    flow: FlowBudget
    lifter: LifterBudget
    evaluation: EvaluationBudget = field(default_factory=EvaluationBudget)
    pca_sweep: tuple[int, ...] = (14, 20, 26, 32)  # section 2
    seeds: tuple[int, ...] = (0, 1, 2)  # section 6
    speed: SpeedBudget | None = field(default_factory=SpeedBudget)  # section 5
    own2d: Own2dBudget | None = field(default_factory=Own2dBudget)  # section 7
    cameras: CameraBudget | None = None  # section 8
    domain: DomainBudget | None = None  # the cross-domain section (its source lifter: the MAIN row)
    options: bool = False  # section 9 (needs ``cameras``: its baseline is section 8's default-cameras ElePose)
    lifter_rows: tuple[str, ...] | None = None  # the lifter runs of sections 1-6 (None: every row)
    limit_clips: int | None = None  # build the cache from this many clips (tests)


_QUICK_FLOW = FlowBudget(epochs=3, lr=5e-4)
_QUICK_LIFTER = LifterBudget(epochs=6, epoch_samples=60_000, hidden=512, lr=5e-4)
"""The quick profile's flow and lifter; the domain profile's source is that lifter (a shared work folder reuses it)."""

PROFILES: dict[str, Profile] = {
    # About 15-20 minutes on 2 CPU cores for sections 1-6: 3-epoch flows and 360k samples per
    # lifter, half-width lifters (512) and higher learning rates than the paper's (measured on the
    # Bandai cache: a flow at 5e-4 reached in 3 epochs the test NLL of 10 epochs at 1e-4; a lifter
    # at 5e-4 reached 44 mm PA-MPJPE in 240k samples, where 2e-4 needed 400k and 1e-3 was slower).
    "quick": Profile(
        name="quick",
        flow=_QUICK_FLOW,
        lifter=_QUICK_LIFTER,
    ),
    # The paper's schedules (flow and lifter 100 epochs over all training poses); meant for a GPU.
    "full": Profile(
        name="full",
        flow=FlowBudget(epochs=100),
        lifter=LifterBudget(epochs=100, check_samples=4096, check_rotations=100),
        evaluation=EvaluationBudget(samples=None, rotations=100),
        pca_sweep=tuple(range(10, 35, 2)),
        speed=SpeedBudget(steps=30, lift_poses=32768),
    ),
    # The elevation branch's learning curves: ElePose, the supervised bound and the fixed prior at
    # the true camera distribution at the paper's width, one seed, 72 epochs of 60k samples
    # (4.32M); then cameras well above the default N(12, 6) and near level, lifters at the quick
    # profile's width and rate for 1.44M samples, and section 9's option runs at that size.
    # Measured on a 2-core AMD EPYC: the three rows 43.5 min, sections 8 and 9 another 46.4.
    "long": Profile(
        name="long",
        flow=FlowBudget(epochs=3, lr=5e-4),
        lifter=LifterBudget(epochs=72, epoch_samples=60_000, hidden=1024, lr=5e-4),
        pca_sweep=(),
        seeds=(0,),
        speed=None,
        own2d=None,
        cameras=CameraBudget(distributions=(("high", 30.0, 8.0), ("level", 0.0, 3.0)), epochs=24),
        options=True,
        lifter_rows=("elepose", "supervised", "fixed-prior-true"),
    ),
    # The cross-domain section alone, with the quick profile's flow and ElePose lifter as its source
    # (the same settings: a quick benchmark's work folder is reused): `fit` on CMU from the Bandai lifter.
    "domain": Profile(
        name="domain",
        flow=_QUICK_FLOW,
        lifter=_QUICK_LIFTER,
        pca_sweep=(),
        seeds=(0,),
        speed=None,
        own2d=None,
        domain=DomainBudget(),
        lifter_rows=("elepose",),
    ),
    # For tests: tiny networks on a small cache, one epoch each (seconds).
    "tiny": Profile(
        name="tiny",
        flow=FlowBudget(epochs=1, epoch_samples=512, hidden=32, blocks=2, batch_size=128),
        lifter=LifterBudget(
            epochs=1,
            epoch_samples=512,
            hidden=32,
            batch_size=128,
            elevation_warmup_steps=1,
            check_samples=128,
            check_rotations=2,
        ),
        evaluation=EvaluationBudget(samples=256, rotations=4),
        pca_sweep=(10,),
        speed=SpeedBudget(
            hidden=32,
            warmup_steps=1,
            steps=2,
            repeats=1,
            lift_poses=256,
            lift_rotations=4,
            lift_rotations_paper=8,
            matmul_seconds=0.05,
            latency_repeats=3,
        ),
        own2d=Own2dBudget(samples=1024, shares=(0.5, 1.0), init_only_shares=(0.25,), distill_shares=(0.25,)),
    ),
}
