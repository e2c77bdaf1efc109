"""The training log: a CSV file, and TensorBoard event files when tensorboard is installed.

One CSV row per logged step (loss terms, learning rate, images/s) and per
validation (the four metrics). A resumed run first drops the rows after the
step it resumes from, so the log reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any, Mapping

__all__ = ["COLUMNS", "TrainLog"]

log = logging.getLogger(__name__)

COLUMNS = (
    "step", "stage", "loss", "alpha", "comp", "refine", "lr", "images_per_s",
    "SAD", "MSE", "Gradient", "Connectivity",
)


class TrainLog:
    """Append-only CSV log (and TensorBoard) of one run; only the main process has one."""

    def __init__(self, out: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = out / "log.csv"
        if resume_step is None or not self.path.is_file():
            self.path.write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
        else:
            self._truncate_after(resume_step)
        self.writer = None
        self.note: str | None = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.note = "TensorBoard event files are not written (pip install tensorboard to get them)"
            else:
                self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        text = self.path.read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        self.path.write_text(buf.getvalue(), encoding="utf-8")

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        row = {"step": step, **{k: _fmt(v) for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n").writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                if key != "stage" and isinstance(value, (int, float)):
                    group = "val" if key in ("SAD", "MSE", "Gradient", "Connectivity") else "train"
                    self.writer.add_scalar(f"{group}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
