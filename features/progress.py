"""Progress bars for the long steps (simulation, training epochs): one helper, one look.

tqdm draws on stderr; where stderr is not a terminal (a CI log) a bar is one line that
its updates overwrite. `TQDM_DISABLE=1` turns every bar off (tqdm reads `TQDM_*`
variables as its defaults).
"""

from __future__ import annotations

from collections.abc import Iterable


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None,
             unit: str = "it", disable: bool = False):
    """A tqdm bar over `iterable` (or a manual one: call `.update(n)`, then `.close()`);
    `disable` for loops too short to need one (the iterable passes through unchanged)."""
    from tqdm.std import tqdm  # tqdm.auto would pick a notebook widget inside Jupyter

    # `disable` is passed only when set: an explicit False would override TQDM_DISABLE
    off = {"disable": True} if disable else {}
    return tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True,
                mininterval=0.5, **off)
