"""A rich progress bar over slices for long commands (upscale, eval), or a no-op."""

from __future__ import annotations

from collections.abc import Callable

Advance = Callable[..., None]


def slice_progress(enabled: bool, total: int, label: str = "upscaling") -> Advance:
    """``advance(n, done=False)``: ``n`` more slices done; ``done=True`` removes the bar.

    The ETA uses the mean speed of the whole run (batches can take minutes) and shows after
    the first update.
    """
    if not enabled:
        return lambda _n, done=False: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total} slices"),
        TimeRemainingColumn(),
        transient=True,
        speed_estimate_period=24 * 3600.0,
    )
    task = prog.add_task("slices", total=total)
    prog.start()
    prog.advance(task, 0)  # a first sample at t0

    def advance(nslices: int, done: bool = False) -> None:
        if nslices:
            prog.advance(task, nslices)
        if done:
            prog.stop()

    return advance
