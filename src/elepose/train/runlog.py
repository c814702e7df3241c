"""Per-epoch metrics to ``metrics.csv`` and TensorBoard (rank 0 only)."""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["RunLog"]


class RunLog:
    """Appends one row per epoch to ``out/metrics.csv`` and writes scalars to ``out/tensorboard``.

    Resumed runs append to the same files; columns are fixed by the first row written.
    """

    def __init__(self, out: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = out / "metrics.csv"
        self.enabled = enabled
        self._writer = None
        if enabled and tensorboard:
            # Imported here: TensorBoard's writer pulls in a large package (about a second), wanted only by a run that logs.
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(out / "tensorboard"))

    def log(self, epoch: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"epoch": epoch, **values}
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists:
            with open(self.path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f))
        else:
            header = list(row)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            if not exists:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in header})
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, epoch)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
