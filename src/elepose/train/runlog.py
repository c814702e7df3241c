"""Per-epoch metrics to ``metrics.csv`` and TensorBoard (rank 0 only)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from elepose.atomic import atomic_write

__all__ = ["RunLog", "read_metrics"]


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` written by :class:`RunLog`, numeric cells only ([] when absent)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        values = {}
        for key, value in row.items():
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                pass
        out.append(values)
    return out


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

    def log(self, epoch: int, values: dict[str, float], tensorboard: bool = True) -> None:
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
        if self._writer is not None and tensorboard:
            for key, value in values.items():
                self._writer.add_scalar(key, value, epoch)
            self._writer.flush()

    def resume_at(self, epoch: int, metrics: dict[str, float] | None) -> None:
        """On resume after ``epoch`` finished epochs: drop rows of later epochs (an interrupted
        epoch end may have logged one) and restore the row of ``epoch`` from the resume state
        when it is missing."""
        if not self.enabled or not self.path.is_file():
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= epoch]
        has_last = any(int(r[0]) == epoch for r in body)
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *body])
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(buffer.getvalue(), encoding="utf-8", newline=""))
        if not has_last and metrics is not None and epoch > 0:
            self.log(epoch, metrics, tensorboard=False)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
