"""Where every figure is drawn and written: matplotlib without a display, the project's
seaborn theme, and ``save`` (PNG and PDF, each atomically). The report's comparison
figures and a method's own per-run figure both draw here, so the methods need nothing of
the report, which reads their results."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from dfnas.io import atomic_path  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")

__all__ = ["plt", "save"]


def save(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths
