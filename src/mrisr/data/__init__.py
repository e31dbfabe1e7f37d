"""Data shipped with mrisr (see NOTICE for attribution)."""

from __future__ import annotations

from pathlib import Path

DEMO_SCAN = "IXI002-T2-demo.nii.gz"


def demo_scan_path() -> Path:
    """The real demo scan: a 176×192×24 crop of the IXI002 T2 (IXI, CC BY-SA 3.0)."""
    return Path(__file__).resolve().parent / "demo" / DEMO_SCAN
