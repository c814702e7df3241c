"""Section 6 (ElePose over seeds) and the time-to-accuracy table of every lifter."""

from __future__ import annotations

from typing import Any

from elepose.benchmark.report.tables import fmt, table

__all__ = ["render_seeds", "render_time_to_accuracy"]


def render_seeds(r: dict[str, Any]) -> list[str]:
    """Section 6: mean, std, min and max of ElePose's metrics over its seeds."""
    seeds = r.get("summary", {}).get("seeds", {})
    cells = [
        [k.upper().replace("_", "-"), fmt(v["mean"]), fmt(v["std"]), fmt(v["min"]), fmt(v["max"]), str(v["n"])]
        for k, v in seeds.items()
    ]
    header = ["ElePose, GT 2D, standard", "mean", "std (n-1)", "min", "max", "seeds"]
    return ["## 6. Seeds", ""] + table(header, cells, empty="(no seeds run)")


def render_time_to_accuracy(r: dict[str, Any], figures: str) -> list[str]:
    """Minutes of training until each lifter came within 10 % of its final PA-MPJPE."""
    cells = []
    for name, lifter in r["lifters"].items():
        t = lifter["time_to_accuracy"]
        if t:
            cells.append(
                [
                    r["labels"].get(name, name),
                    lifter["precision"],
                    fmt(t["final_pa_mpjpe"]),
                    fmt(t["minutes"], 2),
                    str(t["epoch"]),
                    fmt(t["total_minutes"], 2),
                    str(t["epochs"]),
                    fmt(lifter["train_samples_per_s"], 0),
                ]
            )
    header = ["run", "precision", "final PA-MPJPE (epoch check)", "minutes to within 10 %", "epoch"]
    header += ["training minutes", "epochs", "samples/s"]
    lifter = r["profile"]["lifter"]
    return (
        ["## Time to accuracy", "", f"![learning curves]({figures}/learning_curves.png)", ""]
        + table(header, cells)
        + [
            "PA-MPJPE here is the per-epoch check on a fixed test subset of "
            f"{lifter['check_samples']} poses; minutes count training steps only. The resolution is one epoch "
            f"({lifter['epoch_samples'] or 'all'} samples), so short schedules give coarse times.",
            "",
        ]
    )
