"""What a run reports (rank 0 only): ``metrics.csv``, TensorBoard, ``curves.png``, progress bar.

``metrics.csv`` is long-format so that any task's keys fit and resumed runs append to it::

    step,epoch,wall_s,name,value
    50,0,12.3,loss,0.0412
    1000,2,240.1,val/psnr,36.71
    1000,2,240.1,val/bicubic_psnr,33.02

(``pandas.read_csv(f).pivot_table(index="step", columns="name", values="value")`` makes it wide).
On resume the rows after the resumed step are dropped first, so the file describes exactly the
steps that led to the final weights.
"""

from __future__ import annotations

import csv
import os
import sys
import uuid
from pathlib import Path
from typing import Any

CSV_FIELDS = ("step", "epoch", "wall_s", "name", "value")


class Monitor:
    """Logs of one run; every method is a no-op when ``enabled`` is false (ranks > 0)."""

    def __init__(
        self, run_dir: Path, enabled: bool, start_step: int, total_steps: int, progress: str
    ) -> None:
        self.run_dir, self.enabled, self.total = run_dir, enabled, total_steps
        self.csv_path = run_dir / "metrics.csv"
        self.writer = None
        self.bar = None
        self.plain = False
        self._shown: dict[str, float] = {}  # the bar shows the latest losses and val PSNR
        if not enabled:
            return
        _truncate_csv(self.csv_path, start_step)
        new = not self.csv_path.exists()
        self._csv_file = open(self.csv_path, "a", newline="")  # closed in close()
        self._csv = csv.writer(self._csv_file)
        if new:
            self._csv.writerow(CSV_FIELDS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)
        except ImportError:  # tensorboard is optional: the CSV and the curves remain
            self.writer = None
        tty = sys.stderr.isatty()
        if progress == "on" or (progress == "auto" and tty):
            self._start_bar(start_step)
        else:
            self.plain = progress == "auto"  # one line per log step (batch jobs, SLURM logs)

    def _start_bar(self, start_step: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            transient=False,
        )
        self.bar.start()
        self._task = self.bar.add_task("train", total=self.total, completed=start_step, info="")

    def log(self, step: int, epoch: int, wall_s: float, values: dict[str, float]) -> None:
        """Append ``values`` (name → number) for ``step``."""
        if not self.enabled:
            return
        for name, value in values.items():
            self._csv.writerow([step, epoch, f"{wall_s:.3f}", name, repr(float(value))])
            if self.writer is not None:
                self.writer.add_scalar(name, float(value), step)
        self._csv_file.flush()
        if self.bar is not None:
            keep = {k: v for k, v in values.items() if _on_bar(k)}
            self._shown.update(keep)
            info = "  ".join(f"{k} {v:.4g}" for k, v in self._shown.items())
            self.bar.update(self._task, completed=step, info=info)
        elif self.plain:
            info = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
            print(f"step {step}/{self.total}  epoch {epoch}  {info}", file=sys.stderr, flush=True)

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self._task, completed=step)

    def curves(self) -> None:
        """Write ``curves.png`` (training loss — for a GAN, generator and discriminator panels —
        and val PSNR with the baselines as horizontal lines)."""
        if self.enabled:
            self._csv_file.flush()
            plot_curves(self.csv_path, self.run_dir / "curves.png")

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.stop()
        if self.writer is not None:
            self.writer.close()
        self._csv_file.close()


def _on_bar(name: str) -> bool:
    """Shown on the progress bar: the total losses and the validation PSNR."""
    if name in ("val/psnr", "g/loss", "d/loss"):
        return True
    return not _is_aux(name) and not name.startswith(("g/", "d/"))


def _is_aux(name: str) -> bool:
    """Not a training loss: validation scores, learning rates, gradient norms."""
    return name.startswith(("val/", "lr", "grad_norm"))


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` → name → [(step, value)]."""
    out: dict[str, list[tuple[int, float]]] = {}
    if not path.exists():
        return out
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return out


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a resumed run redoes them)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    if len(keep) == len(rows):
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)
    os.replace(tmp, path)


def plot_curves(csv_path: Path, out: Path) -> None:
    """Two panels from ``metrics.csv``, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    m = read_metrics(csv_path)
    gan = any(k.startswith("d/") for k in m)
    fig = Figure(figsize=(15 if gan else 10, 4), constrained_layout=True)
    axes = fig.subplots(1, 3 if gan else 2)
    ax_loss, ax_val = axes[0], axes[-1]
    losses = sorted(k for k in m if not _is_aux(k) and not k.startswith("d/") and k != "g/adv")
    for name in losses:
        steps, values = zip(*m[name], strict=True)
        ax_loss.plot(steps, values, label=name)
    if m.get("g/adv"):  # about 0.7 (−log ½) while the game is balanced: an axis of its own
        ax_adv = ax_loss.twinx()
        steps, values = zip(*m["g/adv"], strict=True)
        ax_adv.plot(steps, values, color="tab:purple", linestyle="--", label="g/adv")
        ax_adv.set_ylabel("adversarial −log σ(D(G))", color="tab:purple")
        ax_adv.legend(loc="upper right")
    ax_loss.set(xlabel="step", ylabel="training loss", title="generator" if gan else "loss")
    if losses and all(v > 0 for k in losses for _, v in m[k]):
        ax_loss.set_yscale("log")
    if gan:  # discriminator loss (left axis) and mean σ(D) on real / generated (right axis)
        ax_d = axes[1]
        if m.get("d/loss"):
            steps, values = zip(*m["d/loss"], strict=True)
            ax_d.plot(steps, values, color="black", label="d/loss")
        ax_d.set(xlabel="step", ylabel="discriminator BCE", title="discriminator")
        ax_p = ax_d.twinx()
        for name, style in (("d/real", "-"), ("d/fake", "--")):
            if m.get(name):
                steps, values = zip(*m[name], strict=True)
                ax_p.plot(steps, values, style, color="tab:red", label=f"σ(D) {name[2:]}")
        ax_p.set_ylim(0, 1)
        ax_p.set_ylabel("mean σ(D)", color="tab:red")
        if ax_p.get_legend_handles_labels()[0]:
            ax_p.legend(loc="upper right")
    if m.get("val/psnr"):
        steps, values = zip(*m["val/psnr"], strict=True)
        ax_val.plot(steps, values, "o-", label="model")
    for name, style in (("val/bicubic_psnr", "--"), ("val/zerofill_psnr", ":")):
        if m.get(name):
            label = name.removeprefix("val/").removesuffix("_psnr")
            ax_val.axhline(m[name][-1][1], linestyle=style, color="grey", label=label)
    ax_val.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (mean over volumes)")
    # GAN panels have a second axis with its legend at the upper right: keep clear of it
    where = {0: "lower left", 1: "upper left"} if gan else {}
    for i, ax in enumerate(axes):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc=where.get(i, "best"))
        ax.grid(alpha=0.3)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def hardware() -> dict[str, Any]:
    """CPU model, GPU name and counts, for the training card."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


class Plateau:
    """``train.stop_patience``: stop when the logged loss (all ranks' mean, so every rank
    decides alike) has not fallen below 0.99 × its best for ``patience`` steps."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.best_step = patience, float("inf"), 0

    def update(self, step: int, loss: float | None) -> bool:
        """Record the loss logged at ``step``; True when the run should stop."""
        if loss is None:
            return False
        if loss < 0.99 * self.best:
            self.best, self.best_step = loss, step
        return step - self.best_step >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = float(state["best"]), int(state["best_step"])
