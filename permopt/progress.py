"""Progress bars: the one tqdm set-up every long wait in permopt uses."""
from __future__ import annotations

from typing import Any


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True) -> Any | None:
    """A tqdm bar of ``total`` steps on stderr, or None when ``enabled`` is False or there is
    nothing to count; callers update it with whole steps (``bar.update()``) and close it."""
    if not enabled or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
