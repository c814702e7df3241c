"""``elepose evaluate``: metric tables under both protocols, baselines, elevation, figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from elepose.cli.errors import InputError, user_errors


def format_table(report: dict[str, Any]) -> str:
    """Plain-text table of an evaluation report (millimetres, percent, CPS units)."""
    from elepose.metrics import METRIC_COLUMNS

    lines = [f"{'2D / method / protocol':<40}" + "".join(f"{label:>10}" for _, label in METRIC_COLUMNS)]
    for kind in ("gt", "detected"):
        section = report[kind]
        rows = [("elepose", section)] + [(f"baseline:{k}", v) for k, v in section["baselines"].items()]
        for name, values in rows:
            for protocol in ("standard", "elepose_code"):
                cells = "".join(f"{values[protocol][key]:>10.1f}" for key, _ in METRIC_COLUMNS)
                lines.append(f"{kind + ' / ' + name + ' / ' + protocol:<40}{cells}")
    for kind in ("gt", "detected"):
        e = report[kind].get("elevation")
        if e:
            lines.append(
                f"elevation ({kind} 2D): r = {e['correlation']:.3f}, mean abs error {e['mae_deg']:.2f} deg "
                f"(predicted {e['predicted_mean_deg']:.1f} +- {e['predicted_std_deg']:.1f}, true {e['true_mean_deg']:.1f} +- {e['true_std_deg']:.1f})"
            )
    r = report.get("reliability", {})
    if r.get("roc_auc") is not None:
        lines.append(
            f"reliability: ROC AUC of NLL for PA-MPJPE > {r['threshold_mm']:.0f} mm = {r['roc_auc']:.3f} ({r['positives']} of {report['poses']} poses)"
        )
    spread = r.get("distribution")
    if spread and spread["median"] is not None:
        lines.append(
            f"reliability (GT 2D): median {spread['median']:.1f}, quartiles {spread['quartile_1']:.1f}-"
            f"{spread['quartile_3']:.1f}, {100 * spread['below_4']:.1f} % of poses below 4"
        )
    if "keypoints" in report:
        lines.append(f"joints: the lifter learnt {report['keypoints']['layout']}; {report['keypoints']['note']}")
    return "\n".join(lines)


REPORT_KIND = "elepose-evaluation"
"""The ``kind`` of an ``evaluate --json`` report: a later run may replace files that say so."""


def _our_report(path: Path) -> bool:
    from elepose.outputs import starts_with_mark

    return starts_with_mark(path, f'"kind": "{REPORT_KIND}"')


def _evaluate_without_3d(
    lifter: Any, flow: Any, record: Any, test: Any, samples: Optional[int], dev: Any, json_path: Optional[Path],
    overwrite: bool, inputs: list[Path],
) -> None:  # fmt: skip
    """A 2D-only cache: the checks that need no 3D, and a word that the 3D metrics need 3D."""
    from elepose.atomic import write_json
    from elepose.train.validation import validate_without_3d
    from elepose.views import parse_elevation_prior

    prior = parse_elevation_prior(record.elevation_prior, elevation_branch=record.elevation_branch)
    checks = validate_without_3d(
        lifter, flow, test, record.normalisation, record.input, record.bone_ratios, prior, samples, dev
    )
    learned = record.learned_elevation
    report = {
        "kind": REPORT_KIND,
        "poses": len(test) if samples is None else min(samples, len(test)),
        "without_3d": checks,
        "learned_elevation": None if learned is None else learned.to_dict(),
        "note": "this cache holds 2D only: MPJPE, PA-MPJPE, N-PCK, AUC and CPS need 3D ground truth",
    }
    typer.echo("3D metrics (MPJPE, PA-MPJPE, N-PCK, AUC, CPS) need 3D ground truth; this cache holds 2D only.")
    for key, value in checks.items():
        typer.echo(f"{key:<28}{value:>12.4f}")
    if json_path is not None:
        write_json(json_path, report, sort_keys=False)


def evaluate(
    checkpoint_dir: Path = typer.Option(..., "--checkpoint", help="Lifter run folder from `elepose train`."),
    data: Path = typer.Option(..., "--data", help="Cache folder (its test split is scored)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON here."),
    figures: Optional[Path] = typer.Option(None, "--figures", help="Folder for nll_vs_error.png and best_worst.png."),
    samples: Optional[int] = typer.Option(
        None, "--samples", help="Score a random subset of this many test poses (default: all)."
    ),
    rotations: int = typer.Option(100, "--rotations", help="Virtual views averaged into each pose's NLL (paper: 100)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --json / figure files that elepose did not write."
    ),
) -> None:
    """Score a trained lifter on the test split: GT and detected 2D, both metric protocols."""
    from elepose.atomic import json_text, write_together
    from elepose.data.cache import load_split
    from elepose.evaluate.evaluation import evaluate_checkpoint
    from elepose.evaluate.figures import plot_best_worst, plot_nll_vs_error
    from elepose.evaluate.reliability import reliability_distribution, reliability_percentile, reliability_roc
    from elepose.models.io import load_lifter
    from elepose.outputs import claim_file, is_our_png
    from elepose.runtime import pick_device

    with user_errors():
        if samples is not None and samples < 1:
            raise InputError(f"--samples: expected a positive number of test poses, got {samples}")
        if not 1 <= rotations <= 10_000:
            raise InputError(f"--rotations: expected 1..10000 virtual views, got {rotations}")
        inputs = [checkpoint_dir, data]
        if json_path is not None:
            claim_file(json_path, _our_report, overwrite, inputs, what="--json")
        pictures = [] if figures is None else [figures / "nll_vs_error.png", figures / "best_worst.png"]
        if figures is not None and figures.exists() and not figures.is_dir():
            raise InputError(f"--figures {figures}: is a file; expected a folder for the figures")
        for picture in pictures:
            claim_file(picture, is_our_png, overwrite, inputs, what="--figures")
        lifter, flow, record = load_lifter(checkpoint_dir)
        train = load_split(Path(data) / "train.npz")
        test = load_split(Path(data) / "test.npz")
        dev = pick_device(device)
        lifter.to(dev)
        if not test.has_3d:
            _evaluate_without_3d(lifter, flow, record, test, samples, dev, json_path, overwrite, inputs)
            return
        report, per_pose = evaluate_checkpoint(lifter, flow, record, train, test, samples, rotations, dev)
        roc = reliability_roc(per_pose["nll"], per_pose["pa_mpjpe"])
        if roc["roc_auc"] is not None:
            report["reliability"] = roc
        if record.reliability is not None:
            spread = reliability_distribution(reliability_percentile(per_pose["nll"], record.reliability))
            report.setdefault("reliability", {})["distribution"] = spread
        report = {"kind": REPORT_KIND, **report, "checkpoint": str(checkpoint_dir), "data": str(data)}
        typer.echo(format_table(report))
        writers: list[tuple[Path, Any]] = []  # all or nothing: an error leaves no output
        if json_path is not None:
            text = json_text(report, sort_keys=False)
            writers.append((json_path, lambda tmp: tmp.write_text(text, encoding="utf-8")))
        if pictures:
            writers.append((pictures[0], lambda tmp: plot_nll_vs_error(tmp, per_pose["pa_mpjpe"], per_pose["nll"])))
            writers.append(
                (pictures[1], lambda tmp: plot_best_worst(tmp, per_pose["pred"], per_pose["gt"], per_pose["pa_mpjpe"]))
            )
        write_together(writers)
        if figures is not None:
            typer.echo(f"figures written to {figures}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
