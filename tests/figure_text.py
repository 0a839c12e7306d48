"""Read back where a rendered matplotlib figure put its texts, to test layouts.

Texts are measured after a real ``savefig`` (what a user gets), with
``Text.get_window_extent(renderer)`` in display pixels.
"""

from __future__ import annotations

import io
import itertools

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

#: pixels a text box may stick out of the figure (its empty descent or side bearing)
EDGE_SLACK = 2.0


def _tick_labels(axis) -> list[Text]:
    """The tick labels the axis draws (ticks inside its view interval)."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * (high - low)
    labels = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        location = tick.get_loc()
        if location is not None and low - slack <= location <= high + slack:
            labels += [label for label in (tick.label1, tick.label2) if label.get_visible()]
    return labels


def rendered_texts(fig: Figure) -> list[tuple[object, Text, Bbox]]:
    """``(owner axes or None, text, pixel box)`` of every non-empty text the figure draws."""
    fig.savefig(io.BytesIO(), format="png")
    renderer = fig.canvas.get_renderer()
    owned: list[tuple[object, Text]] = []
    if fig._suptitle is not None:
        owned.append((None, fig._suptitle))
    for ax in fig.axes:
        texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += _tick_labels(ax.xaxis) + _tick_labels(ax.yaxis)
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        owned += [(ax, text) for text in texts]
    return [
        (owner, text, text.get_window_extent(renderer))
        for owner, text in owned
        if text.get_visible() and text.get_text().strip()
    ]


def _apart(a: Bbox, b: Bbox, gap: float) -> bool:
    return a.x1 + gap <= b.x0 or b.x1 + gap <= a.x0 or a.y1 + gap <= b.y0 or b.y1 + gap <= a.y0


def layout_problems(fig: Figure, gap: float = 2.0) -> list[str]:
    """Texts cut off by the figure's edge, lying over another axes (a panel or colour bar),
    or closer than ``gap`` pixels to a text of another axes; empty when the layout is clean."""
    texts = rendered_texts(fig)
    renderer = fig.canvas.get_renderer()
    frames = [(ax, ax.get_window_extent(renderer)) for ax in fig.axes]
    edge = fig.bbox
    problems = []
    for owner, text, box in texts:
        inner = box.padded(-EDGE_SLACK)  # a glyph box's empty descent may graze the edge
        if inner.x0 < edge.x0 or inner.y0 < edge.y0 or inner.x1 > edge.x1 or inner.y1 > edge.y1:
            problems.append(f"{text.get_text()!r} is cut off at {box.extents.round()}")
        for ax, frame in frames:
            if ax is not owner and not _apart(box, frame, 0.0):
                problems.append(f"{text.get_text()!r} lies over the axes {ax.get_label()!r}")
    for (owner1, text1, box1), (owner2, text2, box2) in itertools.combinations(texts, 2):
        if not _apart(box1, box2, gap if owner1 is not owner2 else 0.0):
            problems.append(f"{text1.get_text()!r} touches {text2.get_text()!r}")
    return problems


def text_box(fig: Figure, text: Text) -> Bbox:
    """The pixel box of ``text`` as last rendered (call :func:`rendered_texts` first)."""
    return text.get_window_extent(fig.canvas.get_renderer())
