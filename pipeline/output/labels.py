"""County labels on a map that do not collide: inside the county where the text fits, else
beside it with a leader line, else left out (and said so by the caller's caption).

One public function, :func:`place_labels`. Hand-written: a greedy placement in display space
(pixels) over a few candidate positions per label, in the order of importance; adjustText (the
usual library) moves every label iteratively and needs a redraw per step, ~1 s for ten labels,
and cannot say "this one does not fit".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["Placed", "draw_labels", "place_labels"]

#: offsets of the candidate positions beside the anchor, in label heights (x, y)
_RING = ((0, 1.6), (0, -1.6), (1.0, 1.2), (-1.0, 1.2), (1.0, -1.2), (-1.0, -1.2), (1.6, 0),
         (-1.6, 0), (0, 2.8), (0, -2.8), (1.8, 2.2), (-1.8, 2.2), (1.8, -2.2), (-1.8, -2.2),
         (2.6, 0), (-2.6, 0))  # fmt: skip
#: room kept free around a label, pixels
_PAD = 2.0


@dataclass(frozen=True)
class Placed:
    text: str
    anchor: tuple[float, float]  # data coordinates of the county's representative point
    at: tuple[float, float]  # data coordinates of the label's centre
    leader: bool  # a line from the anchor to the label is needed


def _boxes_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def place_labels(
    ax,
    labels: Sequence[tuple[str, object]],
    *,
    fontsize: float = 6.5,
    avoid: Sequence[tuple[float, float, float, float]] = (),
) -> list[Placed]:
    """Place ``labels`` — (text, polygon in the axes' data coordinates), most important first —
    on ``ax`` (its limits set, its figure sized). Returns the placed ones; a label is skipped
    when neither its polygon's interior nor any candidate beside it is free. ``avoid``: boxes in
    axes fractions (x0, y0, x1, y1) to keep clear, e.g. the legend and the north arrow."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.textpath import TextPath

    fig = ax.figure
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    to_px = ax.transData
    ax_box = ax.get_window_extent()
    taken = [
        np.array([ax_box.x0 + x0 * ax_box.width, ax_box.y0 + y0 * ax_box.height,
                  ax_box.x0 + x1 * ax_box.width, ax_box.y0 + y1 * ax_box.height])
        for x0, y0, x1, y1 in avoid
    ]  # fmt: skip
    scale = fig.dpi / 72.0  # points → pixels
    placed: list[Placed] = []
    for text, polygon in labels:
        if polygon is None or shapely.is_empty(polygon):
            continue
        path = TextPath((0, 0), text, size=fontsize)
        ext = path.get_extents()
        w, h = ext.width * scale + 2 * _PAD, fontsize * scale * 1.25 + 2 * _PAD
        pt = shapely.point_on_surface(polygon)
        ax_, ay_ = pt.x, pt.y
        px, py = to_px.transform((ax_, ay_))
        poly_px = shapely.transform(polygon, lambda xy: to_px.transform(xy))
        choice = None
        inside = np.array([px - w / 2, py - h / 2, px + w / 2, py + h / 2])
        if shapely.contains(poly_px, shapely.box(*inside)) and _free(inside, taken, ax_box):
            choice = (inside, False)
        else:
            for dx, dy in _RING:
                cx, cy = px + dx * w * 0.6, py + dy * h
                box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                if _free(box, taken, ax_box):
                    choice = (box, True)
                    break
        if choice is None:
            continue
        box, leader = choice
        taken.append(box)
        if leader:  # keep the anchor dot clear of later labels
            taken.append(np.array([px - 2, py - 2, px + 2, py + 2]))
        centre = to_px.inverted().transform(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
        placed.append(Placed(text, (ax_, ay_), (float(centre[0]), float(centre[1])), leader))
    return placed


def _free(box: np.ndarray, taken: list[np.ndarray], ax_box) -> bool:
    if box[0] < ax_box.x0 or box[1] < ax_box.y0 or box[2] > ax_box.x1 or box[3] > ax_box.y1:
        return False
    return not any(_boxes_overlap(box, t) for t in taken)


def draw_labels(ax, placed: Sequence[Placed], *, fontsize: float = 6.5) -> None:
    """Draw placed labels: white-haloed text, and for those beside their county a thin leader
    line from a dot on the county to the label."""
    import matplotlib.patheffects as pe

    halo = [pe.withStroke(linewidth=1.8, foreground="white")]
    for p in placed:
        if p.leader:
            ax.plot(*zip(p.anchor, p.at), color="#333333", lw=0.5, zorder=7, solid_capstyle="butt")
            ax.plot(*p.anchor, "o", ms=1.8, color="#333333", zorder=7)
        ax.text(*p.at, p.text, fontsize=fontsize, ha="center", va="center", zorder=8,
                path_effects=halo, bbox=None)  # fmt: skip
