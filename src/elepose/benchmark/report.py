"""The benchmark report: ``RESULTS.md`` (tables of accuracy, targets, PCA sweep, reliability,
elevation, speed, seeds, time to accuracy), ``results.json`` and the figures, rendered from the
result dictionary that :func:`elepose.benchmark.run.run_benchmark` collects.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from elepose.atomic import atomic_write, write_json
from elepose.benchmark.speed import flow_forward_flops
from elepose.evaluate.figures import new_figure, plot_nll_vs_error, save_png

__all__ = ["metric", "render_markdown", "write_report"]


def metric(
    out: dict[str, Any], run: str, kind: str = "gt", protocol: str = "standard", key: str = "pa_mpjpe"
) -> float | None:
    """One metric of one lifter run from the collected results (None when the run is absent)."""
    lifter = out["lifters"].get(run)
    if lifter is None:
        return None
    return lifter["evaluation"][kind][protocol][key]


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


_METRIC_COLUMNS = (
    ("mpjpe", "MPJPE"),
    ("n_mpjpe", "N-MPJPE"),
    ("pa_mpjpe", "PA-MPJPE"),
    ("n_pck", "N-PCK"),
    ("auc", "AUC"),
    ("cps", "CPS"),
)
_ACCURACY_ROWS = ("elepose", "elepose-fp32", "fixed-prior", "fixed-prior-true", "supervised")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _accuracy_section(r: dict[str, Any]) -> list[str]:
    lines = ["## 1. Accuracy", ""]
    cache = r.get("cache", {})
    lines.append(
        f"Test split of the Bandai benchmark: {cache.get('evaluated_poses', '-')} of {cache.get('test_poses', '-')} poses "
        "(a fixed random subset when fewer). Millimetres; N-PCK and AUC in percent. `standard` = SPEC section 7; "
        "`elepose_code` = the authors' evaluation (reflections allowed, norm-ratio scale, CPS without alignment)."
    )
    lines.append("")
    lifters = r["lifters"]
    for kind, kind_label in (("gt", "ground-truth 2D"), ("detected", "detected 2D (noisy)")):
        for protocol in ("standard", "elepose_code"):
            lines += [f"### {kind_label}, {protocol} protocol", ""]
            rows = []
            for name in _ACCURACY_ROWS:
                if name in lifters:
                    values = lifters[name]["evaluation"][kind][protocol]
                    rows.append([r["labels"].get(name, name)] + [_f(values[k]) for k, _ in _METRIC_COLUMNS])
            if "elepose" in lifters:
                for base, label in (
                    ("flat", "Trivial: flat (all depths 0)"),
                    ("mean_depth", "Trivial: training mean depth per joint"),
                ):
                    values = lifters["elepose"]["evaluation"][kind]["baselines"][base][protocol]
                    rows.append([label] + [_f(values[k]) for k, _ in _METRIC_COLUMNS])
            lines += (
                _table(["method"] + [label for _, label in _METRIC_COLUMNS], rows) if rows else ["(no finished runs)"]
            )
            lines.append("")
    paper = r["paper_h36m"]
    lines += [
        "### For orientation only: the paper's numbers on Human3.6M (another dataset)",
        "",
        "Not comparable with the Bandai rows above (different subjects, cameras, skeleton and training length).",
        "",
    ]
    lines += _table(
        ["paper row (Human3.6M)", "PA-MPJPE", "N-MPJPE", "CPS"],
        [
            [
                "Table 1, ElePose, ground-truth 2D",
                _f(paper["table1_gt2d"]["pa_mpjpe"]),
                _f(paper["table1_gt2d"]["n_mpjpe"]),
                _f(paper["table1_gt2d"]["cps"]),
            ],
            [
                "Table 4, ElePose, detected 2D (CPN)",
                _f(paper["table4_detected"]["pa_mpjpe"]),
                _f(paper["table4_detected"]["n_mpjpe"]),
                _f(paper["table4_detected"]["cps"]),
            ],
        ],
    )
    lines.append("")
    per_dataset = lifters.get("elepose", {}).get("evaluation", {}).get("per_dataset")
    if per_dataset:
        lines += ["### ElePose per dataset (standard protocol)", ""]
        rows = []
        for dataset, values in per_dataset.items():
            for kind in ("gt", "detected"):
                m = values[kind]["standard"]
                rows.append(
                    [
                        dataset,
                        kind,
                        str(values["poses"]),
                        _f(m["mpjpe"]),
                        _f(m["n_mpjpe"]),
                        _f(m["pa_mpjpe"]),
                        _f(m["cps"]),
                    ]
                )
        lines += _table(["dataset", "2D", "poses", "MPJPE", "N-MPJPE", "PA-MPJPE", "CPS"], rows)
        lines.append("")
    lines += ["### Ablations (paper Table 5), ground-truth 2D, standard protocol", ""]
    ablations = (
        ("base", "base"),
        ("base+bone", "base+bone"),
        ("base+bone+elevation", "base+bone+elevation"),
        ("fixed-prior", "base+bone+pca"),
        ("elepose", "ours"),
    )
    rows = []
    for run, key in ablations:
        pa_paper, mpjpe_paper = paper["table5"][key]
        rows.append(
            [
                key.replace("bone", "L_bone").replace("pca", "PCA"),
                run,
                _f(metric(r, run)),
                _f(metric(r, run, key="n_mpjpe")),
                _f(pa_paper),
                _f(mpjpe_paper),
            ]
        )
    lines += _table(["configuration", "run", "PA-MPJPE", "N-MPJPE", "paper H36M PA-MPJPE", 'paper H36M "MPJPE"'], rows)
    lines += [
        "",
        "The `base + L_bone + PCA` row is the fixed-prior run (no elevation branch, U(-20, 20) deg). "
        "The paper's Table 5 labels its second column MPJPE; we list our N-MPJPE beside it.",
        "",
    ]
    return lines


def _render_targets(r: dict[str, Any]) -> list[str]:
    targets = r.get("summary", {}).get("targets", [])
    if not targets:
        return ["(no targets could be evaluated)", ""]
    rows = [[t["target"], t["measured"], "yes" if t["met"] else "**no**"] for t in targets]
    return _table(["target (issues 4, 14)", "measured", "met"], rows) + [""]


def render_markdown(r: dict[str, Any], figures: str = "figures") -> str:
    """RESULTS.md from the results dictionary (every number printed here is in results.json)."""
    machine, software, profile = r["machine"], r["software"], r["profile"]
    lines = [
        f"# ElePose benchmark: profile `{profile['name']}`",
        "",
        f"- Command: `{r['command']}`",
        f"- Date: {r['date']}; wall time {r['wall_seconds'] / 60:.1f} min (this invocation; finished runs are reused)",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores (torch threads {machine['torch_threads']}), GPU: {machine['gpu'] or 'none'}; device `{machine['device']}`",
        f"- Load average (1/5/15 min) at start {machine.get('load_average_start')}, at end {machine.get('load_average_end')} "
        f"on {machine['cores']} cores"
        + (
            ": other processes shared the CPU, so every timing here is slower than on an idle machine"
            if _busy(machine)
            else ""
        ),
        f"- Lifter training time, all runs: {r.get('lifter_training_minutes', 0.0):.1f} min (training steps only)",
        f"- Software: Python {software['python']}, torch {software['torch']}, numpy {software['numpy']}, elepose {software['elepose']}",
        f"- Git commit: {r['git_commit'] or 'unknown'}",
        f"- Work folder: `{r['work']}`",
        "",
        "### Profile settings",
        "",
    ]
    lines += _table(["setting", "value"], [[k, f"`{v}`"] for k, v in profile.items()])
    lines.append("")
    if r["failed"]:
        lines += ["## Failures", ""]
        for name in r["failed"]:
            lines.append(f"- `{name}`: {r['runs'][name].get('error', '')}")
        lines.append("")
    lines += ["## Targets", ""] + _render_targets(r)
    lines += _accuracy_section(r)

    summary = r.get("summary", {})
    lines += ["## 2. PCA bases (paper Fig. 4)", "", f"![PCA sweep]({figures}/pca_sweep.png)", ""]
    rows = [
        [
            str(s["pca_bases"]) if s["pca_bases"] is not None else "none (34-D)",
            s["lifter"],
            _f(s["pa_mpjpe"]),
            _f(s["n_mpjpe"]),
            _f(s["flow_test_nll"], 2),
            _f(None if s["explained_variance"] is None else 100 * s["explained_variance"], 3),
        ]
        for s in summary.get("pca_sweep", [])
    ]
    lines += _table(["PCA bases", "lifter run", "PA-MPJPE", "N-MPJPE", "flow test NLL", "variance kept %"], rows)
    lines += ["", "The no-PCA lifter is `base+bone+elevation` (elevation branch, bone prior, no PCA).", ""]

    lines += ["## 3. Reliability (paper Fig. 5)", "", f"![NLL against PA-MPJPE]({figures}/nll_vs_error.png)", ""]
    rel = r["lifters"].get("elepose", {}).get("evaluation", {}).get("reliability")
    if rel:
        lines += _table(
            ["ROC AUC (NLL flags PA-MPJPE > 100 mm)", "poses > 100 mm", "median NLL < 50 mm", "50-100 mm", "> 100 mm"],
            [
                [
                    _f(rel["roc_auc"], 3),
                    str(rel["positives"]),
                    _f(rel["median_nll_below_50mm"], 2),
                    _f(rel["median_nll_50_100mm"], 2),
                    _f(rel["median_nll_above_100mm"], 2),
                ]
            ],
        )
        lines += ["", f"NLL = flow NLL averaged over {profile['rotations']} virtual views per pose (paper: 100).", ""]

    lines += ["## 4. Elevation", "", f"![predicted vs true elevation]({figures}/elevation.png)", ""]
    cache = r.get("cache", {})
    configured = cache.get("camera_elevation_configured_deg")
    truth = cache.get("camera_elevation_train_deg", {})
    lines.append(
        "Cameras' true elevation: "
        + (f"drawn from N({configured['mean']:.0f}, {configured['std']:.0f}) deg; " if configured else "")
        + f"training cameras {_f(truth.get('mean'))} +- {_f(truth.get('std'))} deg."
    )
    lines.append("")
    rows = []
    for name, lifter in r["lifters"].items():
        e = lifter["evaluation"]["gt"].get("elevation")
        if not e:
            continue
        learned = lifter["evaluation"]["learned_elevation"]
        rows.append(
            [
                r["labels"].get(name, name),
                _f(e["correlation"], 3),
                _f(e["mae_deg"], 2),
                f"{_f(e['predicted_mean_deg'])} +- {_f(e['predicted_std_deg'])}",
                f"{_f(e['true_mean_deg'])} +- {_f(e['true_std_deg'])}",
                _f(learned["mu_deg"]),
                _f(learned["sigma_deg"], 2),
            ]
        )
    lines += (
        _table(
            [
                "run",
                "r (pred vs true)",
                "MAE deg",
                "predicted deg",
                "true deg (test)",
                "learned mu_e",
                "learned sigma_e",
            ],
            rows,
        )
        if rows
        else ["(no run with an elevation branch)"]
    )
    lines.append("")
    lines += _elevation_curves(r)

    lines += _speed_section(r)

    lines += ["## 6. Seeds", ""]
    seeds = summary.get("seeds", {})
    if seeds:
        rows = [
            [k.upper().replace("_", "-"), _f(v["mean"]), _f(v["std"]), _f(v["min"]), _f(v["max"]), str(v["n"])]
            for k, v in seeds.items()
        ]
        lines += _table(["ElePose, GT 2D, standard", "mean", "std (n-1)", "min", "max", "seeds"], rows)
    lines.append("")

    lines += _own2d_section(r.get("own2d"))
    lines += _cameras_section(r)
    lines += _options_section(r)

    lines += ["## Time to accuracy", "", f"![learning curves]({figures}/learning_curves.png)", ""]
    rows = []
    for name, lifter in r["lifters"].items():
        t = lifter["time_to_accuracy"]
        if t:
            rows.append(
                [
                    r["labels"].get(name, name),
                    lifter["precision"],
                    _f(t["final_pa_mpjpe"]),
                    _f(t["minutes"], 2),
                    str(t["epoch"]),
                    _f(t["total_minutes"], 2),
                    str(t["epochs"]),
                    _f(lifter["train_samples_per_s"], 0),
                ]
            )
    lines += (
        _table(
            [
                "run",
                "precision",
                "final PA-MPJPE (epoch check)",
                "minutes to within 10 %",
                "epoch",
                "training minutes",
                "epochs",
                "samples/s",
            ],
            rows,
        )
        if rows
        else []
    )
    lines += [
        "",
        "PA-MPJPE here is the per-epoch check on a fixed test subset of "
        f"{profile['train_eval_samples']} poses; minutes count training steps only. The resolution is one epoch "
        f"({profile['lifter_epoch_samples'] or 'all'} samples), so short schedules give coarse times.",
        "",
    ]
    return "\n".join(lines) + "\n"


_OWN2D_ROWS = (
    ("all-bandai", "ElePose on all Bandai (the standard lifter; dataset 1 seen)"),
    ("transfer", "Transferred: trained on dataset 2 only, used as it is"),
    ("transfer_on_coco", "Transferred, fed COCO-defined 2D (what a detector gives it)"),
    ("cache-path", "Dataset 1's clips through the cache (H36M-17 joints, detected 2D, bone ratios of its 3D)"),
)


def _own2d_section(own: dict[str, Any] | None) -> list[str]:
    """Section 7: ``elepose fit`` on detector files of dataset 1, with no 3D (:mod:`elepose.benchmark.own2d`)."""
    lines = ["## 7. Train on your own 2D", ""]
    if not own:
        return lines + ["(not run)", ""]
    if "skipped" in own:
        return lines + [f"Skipped: {own['skipped']}.", ""]
    lines += [
        f"Dataset 1's training clips ({own['clips']}) exported as MMPose JSON, one file per clip and camera "
        "(detected 2D as COCO-17, no 3D), and `elepose fit` on those files alone, from scratch or with "
        f"`--init` from the dataset-2 lifter, {own['samples']:,} samples per stage. All rows: dataset 1's test split. "
        "Fits and the COCO row are scored against the 3D of COCO's joint definitions (pelvis = mid-hips, "
        "thorax = mid-shoulders); r = Pearson correlation of predicted and true camera elevation; reliability = "
        "median percentile of the test poses against the lifter's own calibration.",
        "",
    ]
    rows = []

    def row(label: str, entry: dict[str, Any], poses: str) -> list[str]:
        elevation = entry.get("elevation") or {}
        low = entry.get("lowest_reprojection") or {}
        own = (entry.get("validation_without_3d") or {}).get("val_reprojection")
        return [
            label,
            poses,
            _f(entry["detected"]["pa_mpjpe"]),
            _f(entry["gt"]["pa_mpjpe"]),
            _f(entry["detected"]["n_mpjpe"]),
            _f(elevation.get("correlation"), 2),
            _f(entry.get("reliability_median")),
            f"{entry['epoch']} ({_f(own, 3)})" if "epochs" in entry else "-",
            f"{low['epoch']}: {_f(low.get('pa_mpjpe_detected'))} ({_f(low.get('val_reprojection'), 3)})"
            if low
            else "-",
        ]

    for name, label in _OWN2D_ROWS:
        if name in own["lifters"]:
            rows.append(row(label, own["lifters"][name], "-"))
    fits = [(name, e) for name, e in own["lifters"].items() if name.startswith("fit-")]
    for name, entry in sorted(fits, key=lambda item: (item[1]["start"] != "scratch", item[1]["share"])):
        if name.startswith("fit-"):
            label = f"fit {'--init' if entry['start'] == 'init' else 'from scratch'}, {round(100 * entry['share'])} % "
            label += f"({entry['clips']} clips, {entry['files']} files)"
            rows.append(row(label, entry, f"{entry['training_poses']:,}"))
    lines += _table(
        [
            "lifter",
            "training poses",
            "PA-MPJPE, detected 2D",
            "PA-MPJPE, GT 2D",
            "N-MPJPE, detected",
            "r",
            "reliability",
            "epochs (val. 2D reprojection)",
            "epoch of the lowest val. 2D reprojection: PA-MPJPE detected (its val. reprojection)",
        ],
        rows,
    )
    lines += [
        "",
        "A fit's row is its last epoch (`fit --keep last`, the default); the last column is the epoch "
        "`--keep best` would pick by the held-out 2D reprojection, measured without 3D.",
    ]
    lines += ["", "| check | measured | met |", "|---|---|---|"]
    lines += [f"| {c['check']} | {c['measured']} | {'yes' if c['met'] else '**no**'} |" for c in own["checks"]]
    lines.append("")
    real = own.get("real", {})
    if "skipped" in real:
        lines += [f"Real detections: skipped ({real['skipped']}).", ""]
    elif real:
        lines += [
            f"Real AlphaPose detections (`{Path(real['file']).name}`; no 3D, so no accuracy): "
            "reliability of the file's people (median percentile; share below 4) under each lifter (a fit's last "
            "epoch), the epoch of its lowest held-out 2D reprojection, and the last epoch's checks on the held-out 2D (2D reprojection in normalised units, the flow NLL of the "
            "virtual views) and learned mean elevation.",
            "",
        ]
        rows = []
        if "bandai_lifter" in real:
            b = real["bandai_lifter"]
            rows.append(["ElePose on all Bandai", "-", str(b["people"]), _f(b["reliability_median"]),
                         _f(100 * b["reliability_below_4"]) + " %", "-", "-", "-", "-"])  # fmt: skip
        for name in ("real-fit-scratch", "real-fit-init"):
            if name in real:
                e = real[name]
                v = e.get("validation_without_3d") or {}
                label = "fit from scratch" if name.endswith("scratch") else "fit --init (the all-Bandai lifter)"
                kept = (
                    f"{e['lowest_reprojection_epoch']} of {e['epochs']}" if e.get("lowest_reprojection_epoch") else "-"
                )
                rows.append([label, f"{e['training_poses']:,}", str(e["people"]), _f(e["reliability_median"]),
                             _f(100 * e["reliability_below_4"]) + " %", kept, _f(v.get("val_reprojection"), 3),
                             _f(v.get("val_nf"), 1), _f(v.get("elevation_mu_train_deg"))])  # fmt: skip
        lines += _table(
            [
                "lifter",
                "training poses",
                "people",
                "reliability",
                "below 4",
                "lowest reprojection at epoch",
                "val. 2D reprojection",
                "val. flow NLL",
                "learned mu_e (deg)",
            ],  # fmt: skip
            rows,
        )
        lines.append("")
    return lines


def _camera_budget(profile: dict[str, Any]) -> str:
    """Sections 8 and 9's training budget in words, e.g. ``1,440,000 samples (width 512, lr 0.0005, seed 0)``."""
    samples = profile["camera_epochs"] * (profile["lifter_epoch_samples"] or 0)
    return f"{samples:,} samples (width {profile['camera_hidden']}, lr {profile['camera_lr']:g}, seed 0)"


def _cameras_section(r: dict[str, Any]) -> list[str]:
    """Section 8: ElePose against both fixed priors under other camera-elevation distributions."""
    rows_in = r.get("cameras") or []
    if not rows_in:
        return []
    lines = [
        "## 8. Camera distributions",
        "",
        "Each distribution has its own Bandai cache (the same clips, every camera's elevation drawn from "
        "N(mean, std) deg) and its own flow; on each, ElePose, the fixed prior U(-20, 20) deg and the fixed prior "
        f"at the cameras' true N(mean, std) are trained for {_camera_budget(r['profile'])} and evaluated on that "
        "cache's test split: ground-truth 2D, "
        "standard protocol, PA-MPJPE in mm. Gains are the fixed prior's PA-MPJPE minus ElePose's over the "
        "fixed prior's (positive: ElePose better).",
        "",
    ]
    rows = []
    for entry in rows_in:
        runs = entry["runs"]
        values = {v: metric(r, runs[v]) if v in runs else None for v in ("elepose", "fixed-prior", "fixed-prior-true")}
        ele = values["elepose"]
        cams = entry.get("train_cameras_deg")
        evaluation = r["lifters"][runs["elepose"]]["evaluation"] if "elepose" in runs else {}
        e = evaluation.get("gt", {}).get("elevation")
        learned = evaluation.get("learned_elevation")

        def gain(other: float | None, ele: float | None = ele) -> str:
            return "-" if other is None or ele is None else f"{100 * (other - ele) / other:+.1f} %"

        configured = entry["configured_deg"]
        rows.append(
            [
                f"{entry['name']}: N({configured['mean']:g}, {configured['std']:g})",
                f"{_f(cams['mean'])} +- {_f(cams['std'])}" if cams else "-",
                _f(ele),
                _f(values["fixed-prior"]),
                _f(values["fixed-prior-true"]),
                gain(values["fixed-prior"]),
                gain(values["fixed-prior-true"]),
                _f(e["correlation"], 3) if e else "-",
                f"{_f(e['predicted_mean_deg'])} +- {_f(e['predicted_std_deg'])}" if e else "-",
                f"{_f(learned['mu_deg'])} / {_f(learned['sigma_deg'], 2)}" if learned else "-",
            ]
        )
    lines += _table(
        [
            "cameras (deg)",
            "training cameras (deg)",
            "ElePose",
            "fixed U(-20,20)",
            "fixed at the truth",
            "ElePose vs U(-20,20)",
            "ElePose vs the truth",
            "r",
            "predicted (deg)",
            "learned mu_e / sigma_e",
        ],
        rows,
    )
    lines.append("")
    return lines


def _options_section(r: dict[str, Any]) -> list[str]:
    """Section 9: ElePose with one option changed against the defaults at section 8's budget."""
    options = r.get("options") or []
    baseline = "cameras-default-elepose"
    if not options or baseline not in r["lifters"]:
        return []
    lines = [
        "## 9. Options of the elevation branch and the 2D normalisation",
        "",
        f"ElePose on the default cameras, {_camera_budget(r['profile'])}, one setting changed a row; the first row "
        "is the defaults (section 8's default-cameras ElePose: the paper's recipe, 2D at the dataset scale, mu_e "
        "and sigma_e of each batch with their gradient, with this code's 300-step elevation hold at 10 deg where the "
        "paper starts the branch at 0). PA-MPJPE in mm on the test "
        "split; r, the predictions' spread (std) and the learned sigma_e on ground-truth 2D.",
        "",
    ]

    def elevation(run: str) -> dict[str, Any]:
        return r["lifters"][run]["evaluation"]["gt"].get("elevation") or {}

    def cells(run: str) -> list[str]:
        e = elevation(run)
        return [
            _f(metric(r, run)),
            _f(metric(r, run, kind="detected")),
            _f(e.get("correlation"), 3),
            _f(e.get("predicted_std_deg"), 2),
            _f(r["lifters"][run]["evaluation"]["learned_elevation"]["sigma_deg"], 2),
        ]

    base_gt, base_r = metric(r, baseline), elevation(baseline).get("correlation")
    rows = [["the defaults", "-", *cells(baseline), "-", "-"]]
    for option in options:
        run = option["run"]
        gt, corr = metric(r, run), elevation(run).get("correlation")
        settings = ", ".join(f"{k}={v}" for k, v in option["settings"].items())
        if option["flow_scale"] != "dataset":
            settings = f"flow scale={option['flow_scale']}" + (f", {settings}" if settings else "")
        rows.append(
            [
                option["label"],
                f"`{settings}`",
                *cells(run),
                "-" if gt is None or base_gt is None else f"{gt - base_gt:+.1f}",
                "-" if corr is None or base_r is None else f"{corr - base_r:+.3f}",
            ]
        )
    lines += _table(
        [
            "ElePose",
            "setting",
            "PA-MPJPE",
            "PA-MPJPE, detected 2D",
            "r",
            "predicted spread (deg)",
            "sigma_e (deg)",
            "PA-MPJPE change",
            "r change",
        ],
        rows,
    )
    lines.append("")
    return lines


def _elevation_curves(
    r: dict[str, Any],
    points: int = 12,
    runs: tuple[str, ...] = ("elepose",),
    compare: tuple[str, ...] = ("supervised", "fixed-prior-true"),
) -> list[str]:
    """Section 4's learning curves: per-epoch r, predicted spread and sigma_e against training
    samples of ``runs`` (ElePose, seed 0), at most ``points`` rows a run, the last always; the
    PA-MPJPE of the ``compare`` runs at the same epochs beside it, where they ran as long."""
    lines: list[str] = []
    for name, lifter in r["lifters"].items():
        if name not in runs:
            continue
        curve = [c for c in lifter.get("curve") or [] if math.isfinite(c.get("elevation_r", math.nan))]
        if not curve:
            continue
        step = max(1, -(-len(curve) // points))
        shown = curve[step - 1 :: step]
        if shown[-1] is not curve[-1]:
            shown.append(curve[-1])
        others = {
            other: {c["samples"]: c.get("pa_mpjpe") for c in r["lifters"][other].get("curve") or []}
            for other in compare
            if other in r["lifters"] and other != name
        }
        others = {k: v for k, v in others.items() if all(c["samples"] in v for c in shown)}
        if not lines:
            lines += [
                "### Learning curves of the elevation branch",
                "",
                "Per-epoch checks on the fixed test subset (ground-truth 2D): PA-MPJPE, r of predicted against true "
                "elevation, the spread (std) of the predictions against the cameras', and sigma_e over training poses.",
                "",
            ]
        lines += [f"{r['labels'].get(name, name)}:", ""]
        lines += _table(
            ["training samples", "PA-MPJPE", "r", "predicted spread (deg)", "sigma_e (deg)"]
            + [f"PA-MPJPE, {r['labels'].get(other, other)}" for other in others],
            [
                [
                    f"{c.get('samples', 0):,}",
                    _f(c.get("pa_mpjpe")),
                    _f(c.get("elevation_r"), 3),
                    _f(c.get("elevation_spread_deg"), 2),
                    _f(c.get("elevation_sigma_train_deg"), 2),
                ]
                + [_f(values[c["samples"]]) for values in others.values()]
                for c in shown
            ],
        )
        lines.append("")
    return lines


def _busy(machine: dict[str, Any]) -> bool:
    loads = [v for key in ("load_average_start", "load_average_end") for v in (machine.get(key) or [])[:2]]
    return bool(loads) and max(loads) > (machine.get("cores") or 1) + 0.5


# The ElePose authors' training step (width 1024, batch 256) on 2 CPU cores, as measured while
# filing issue 15 of this project; not re-measured by the benchmark.
AUTHORS_STEP_SAMPLES_PER_S = {"fp32": 1250, "bf16": 2350}
AUTHORS_STEP_SOURCE = "measured on a 2-core machine of this type when issue 15 was filed; not re-measured"


def _speed_section(r: dict[str, Any]) -> list[str]:
    lines = ["## 5. Speed", ""]
    speed = r.get("speed")
    if not speed:
        return lines + ["(not measured)", ""]
    flops = speed["flops_per_sample"]
    lines.append(
        f"Device `{speed['device']}`, {speed['threads']} threads, batch {speed['batch_size']}. FLOPs per training sample "
        f"(analytic, from layer shapes): {flops['total'] / 1e6:.1f} M (lifter {flops['lifter'] / 1e6:.1f} M = 2 passes x "
        f"forward+backward; flow {flops['flow'] / 1e6:.2f} M = forward + backward to its input)."
    )
    lines.append("")
    rows = []
    for precision, p in speed["precisions"].items():
        repeats = p.get("repeats_samples_per_s", [p["samples_per_s"]])
        loads = [round(load[0], 2) for load in p.get("load_average", []) if load]
        rows.append(
            [
                precision,
                _f(p["matmul_flops_per_s"] / 1e9),
                _f(p["samples_per_s"], 0),
                _f(p["achieved_flops_per_s"] / 1e9),
                f"{100 * p['fraction_of_matmul']:.0f} %",
                f"{len(repeats)} x {p.get('timed_steps', '-')} steps: " + ", ".join(f"{v:.0f}" for v in repeats),
                ", ".join(str(v) for v in loads) or "-",
            ]
        )
    for precision, samples in AUTHORS_STEP_SAMPLES_PER_S.items():
        rows.append(
            [f"authors' step, {precision} (reference)", "-", f"{samples:,}", "-", "-", AUTHORS_STEP_SOURCE, "-"]
        )
    width = speed.get("hidden", r["profile"]["hidden"])
    shape = f"{speed['batch_size']}x{width} @ {width}x{width}"
    lines.append(
        f"Training speed of a width-{width} lifter (the paper's width is 1024), whatever width the profile trains; "
        "medians of interleaved repeats (matmul rate, then training steps), each with the 1-minute load average:"
    )
    lines.append("")
    lines += _table(
        [
            "precision",
            f"matmul GFLOP/s ({shape})",
            "training samples/s",
            "training GFLOP/s",
            "fraction of matmul",
            "repeats (samples/s)",
            "load",
        ],
        rows,
    )
    lines.append("")
    lines += _ceilings(speed, flops["total"])
    lift = speed["lift"]
    plain = speed.get("lift_no_reliability", {})
    lines += _table(
        ["lift", "poses/s (batched, median of the repeats)", "batch", "batch-1 latency ms (median)"],
        [
            [
                f"with reliability ({lift['rotations']} views, the `lift` default), {lift['method']}, width {r['profile']['hidden']}",
                _f(lift["batched_poses_per_s"], 0),
                str(lift["batch_size"]),
                _f(lift["batch1_latency_ms"], 2),
            ]
        ]
        + [
            [
                f"with reliability ({p['rotations']} views, the paper's count)",
                _f(p["batched_poses_per_s"], 0),
                str(p["batch_size"]),
                _f(p["batch1_latency_ms"], 2),
            ]
            for p in [speed.get("lift_paper_rotations")]
            if p
        ]
        + [
            [
                "3D only (no reliability)",
                _f(plain.get("batched_poses_per_s"), 0),
                str(plain.get("batch_size", "-")),
                "-",
            ]
        ],
    )
    lines += _lift_split(speed, r["profile"])
    mem = speed["memory"]
    lines += [
        "",
        f"Peak memory: {_f(mem['peak_rss_mib'], 0)} MiB resident (whole benchmark process, ru_maxrss)"
        + (f", {_f(mem['peak_cuda_mib'], 0)} MiB CUDA allocated" if mem.get("peak_cuda_mib") is not None else "")
        + ".",
        "",
    ]
    for precision in ("fp32", "bf16"):
        ops = speed.get(f"profile_{precision}", [])
        if ops:
            lines += [f"Where a {precision} training step spends its time (torch.profiler, self time):", ""]
            lines += _table(
                ["operator", "ms per step", "% of step"],
                [[f"`{o['op']}`", _f(o["ms_per_step"], 1), _f(o["percent"], 1)] for o in ops],
            )
            lines.append("")
    return lines


def _ceilings(speed: dict[str, Any], flops_per_sample: float) -> list[str]:
    """The fastest step this run's matmul rates allow (every FLOP at that rate), against issue 15's target."""
    prec = speed["precisions"]
    if "bf16" not in prec:
        return []
    bf16 = prec["bf16"]["matmul_flops_per_s"]
    needed = 4_700 * flops_per_sample
    caps = ", ".join(f"{p} {v['matmul_flops_per_s'] / flops_per_sample:,.0f}" for p, v in prec.items())
    return [
        f"Ceiling: with every FLOP at this run's matmul rate a training step runs at most {caps} samples/s; "
        f"issue 15's 4,700 bf16 samples/s would need {needed / 1e9:.0f} GFLOP/s, {needed / bf16:.2f}x this machine's "
        "bf16 matmul rate.",
        "",
    ]


def _lift_split(speed: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """Where lifting with reliability spends its time, and what the flow's subnets in bf16 would give."""
    lift, plain, agree = speed["lift"], speed.get("lift_no_reliability", {}), speed.get("reliability_precision")
    lines: list[str] = []
    if plain.get("batched_poses_per_s"):
        share = 1.0 - lift["batched_poses_per_s"] / plain["batched_poses_per_s"]
        lines += [
            "",
            f"The reliability's flow NLL is {100 * share:.0f} % of a batched `lift` with reliability (1 - the ratio of the two rates).",
        ]
    if agree:
        fp32, bf16 = agree["fp32"]["nll_poses_per_s"], agree["bf16"]["nll_poses_per_s"]
        pct = agree.get("percentile_abs_diff_max")
        lines += [
            "",
            f"The NLL alone ({agree['rotations']} views, {agree['poses']} poses, medians of the repeats): fp32 "
            f'{fp32:,.0f} poses/s; the flow\'s subnets in bf16 (`reliability_nll(..., precision="bf16")`) {bf16:,.0f} '
            f"({bf16 / fp32:.2f}x), moving the NLL by {agree['nll_abs_diff_median']:.3f} nats (median; "
            f"{agree['nll_abs_diff_max']:.2f} at most)"
            + (f" and the reliability percentile by up to {pct:.1f} points" if pct is not None else "")
            + "; issue 15 allows 0.05 nats and 1 point, so `lift` keeps fp32.",
        ]
        nll_flops = agree["rotations"] * flow_forward_flops(26, profile["flow_blocks"], profile["flow_hidden"])
        prec = speed.get("precisions", {})
        if prec:
            caps = ", ".join(f"{p} {v['matmul_flops_per_s'] / nll_flops:,.0f}" for p, v in prec.items())
            lines += [
                "",
                f"The NLL's FLOPs ({nll_flops / 1e6:.1f} M per pose at {agree['rotations']} views, 26 PCA bases) cap it at "
                f"{caps} poses/s at this run's matmul rates; issue 15's 50,000 poses/s would need "
                f"{50_000 * nll_flops / 1e9:.0f} GFLOP/s.",
            ]
    return lines


def write_report(report: dict[str, Any], results: Path) -> None:
    """Write ``results`` (markdown), ``results.json`` and ``figures/`` beside it, each atomically."""
    results.parent.mkdir(parents=True, exist_ok=True)
    figures = results.parent / "figures"
    try:
        _figures(report, figures)
    except Exception as err:  # a figure must not cost the tables
        report.setdefault("figure_errors", []).append(f"{type(err).__name__}: {err}")
    write_json(results.parent / "results.json", report)
    text = render_markdown(report, os.path.relpath(figures, results.parent))
    atomic_write(results, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _figures(r: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sweep = [
        s for s in r.get("summary", {}).get("pca_sweep", []) if s["pca_bases"] is not None and s["pa_mpjpe"] is not None
    ]
    fig = new_figure((5, 3))
    ax = fig.add_subplot()
    if sweep:
        ax.plot([s["pca_bases"] for s in sweep], [s["pa_mpjpe"] for s in sweep], "o-")
    ax.set_xlabel("PCA bases"), ax.set_ylabel("PA-MPJPE (mm)"), ax.set_title("PCA bases sweep (Bandai)")
    fig.tight_layout(), save_png(fig, folder / "pca_sweep.png", dpi=80)

    per_pose = Path(r["work"]) / "elepose" / "per_pose.npz"
    if per_pose.is_file():
        data = np.load(per_pose)
        plot_nll_vs_error(
            folder / "nll_vs_error.png",
            data["pa_mpjpe"],
            data["nll"],
            title="Reliability: NLL against PA-MPJPE (Bandai)",
        )
        fig = new_figure((4, 4))
        ax = fig.add_subplot()
        ax.scatter(data["elevation_true_deg"], data["elevation_pred_deg"], s=2, alpha=0.3)
        lo, hi = float(data["elevation_true_deg"].min()), float(data["elevation_true_deg"].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        (
            ax.set_xlabel("true camera elevation (deg)"),
            ax.set_ylabel("predicted (deg)"),
            ax.set_title("ElePose elevation"),
        )
        fig.tight_layout(), save_png(fig, folder / "elevation.png", dpi=80)

    fig = new_figure((6, 3.5))
    ax = fig.add_subplot()
    for name, lifter in r["lifters"].items():
        curve = [c for c in lifter["curve"] if c["pa_mpjpe"] is not None]
        if curve and not name.startswith(("pca", "cameras-", "option-")):  # sections 8 and 9 have tables
            ax.plot([c["minutes"] for c in curve], [c["pa_mpjpe"] for c in curve], ".-", label=name, lw=1)
    ax.set_xlabel("training minutes"), ax.set_ylabel("PA-MPJPE (mm, test subset)"), ax.set_yscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout(), save_png(fig, folder / "learning_curves.png", dpi=80)
