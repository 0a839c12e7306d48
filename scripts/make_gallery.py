"""Regenerate docs/gallery.md and its figures (docs/images/gallery/) from the presets (the
run presets, then the chains presets of sgdscape.records.chain_presets).

Run: python scripts/make_gallery.py [NAME ...]   (all presets by default)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images" / "gallery"


def featured_step(name: str, result) -> int:
    """The step whose two-panel figure tells the preset's story best."""
    t = result.trajectory
    if name == "disagreeing-samples":
        # of the steps whose sample pulls against the true gradient, the strongest pull
        opposed = np.where(t.cosine < -0.5, np.linalg.norm(t.grads, axis=-1), -1.0)
        return int(np.argmax(opposed))
    if name == "too-large-lr":
        return min(12, int(t.diverged_step))  # oscillating, still inside the window
    if name == "seed":
        return 30
    return min(10, t.n_steps - 1)


def section(name: str, story: str, command: str, *texts: str) -> str:
    """One gallery section: the heading, the command that reproduces it, the preset's figure
    (``images/gallery/NAME.png``) and the paragraphs ``texts`` under it."""
    lines = [f"## `{name}`: {story}", "", "```bash", command, "```", ""]
    lines += [f"![{name}](images/gallery/{name}.png)", ""]
    for text in texts:
        lines += [text, ""]
    return "\n".join(lines)


def render(name: str) -> str:
    """Run preset ``name``, save its figure, and return its markdown section."""
    import matplotlib

    matplotlib.use("Agg")
    import sgdscape
    from sgdscape.records.basins import basins
    from sgdscape.records.presets import NETWORK_PRESETS, PRESETS
    from sgdscape.views.overlays import plot_basins, plot_compare
    from sgdscape.views.step_figure import plot_step, save_figure

    if name in NETWORK_PRESETS:
        return render_network(name)
    preset = PRESETS[name]
    result = sgdscape.run(preset.config)
    IMAGES.mkdir(parents=True, exist_ok=True)
    image = IMAGES / f"{name}.png"
    if preset.basins:
        figure = plot_basins(basins(preset.config, points=40), result.landscape)
    elif preset.curvature:
        from sgdscape.records.run import with_curvature
        from sgdscape.views.curvature_figure import plot_stability

        figure = plot_stability(with_curvature(result))
    elif result.others:
        figure = plot_compare(result)
    else:
        figure = plot_step(result, featured_step(name, result))
    save_figure(figure, image, dpi=80)
    return section(name, preset.story, f"sgdscape run --preset {name}", preset.explanation)


def render_network(name: str) -> str:
    """Run network preset ``name``, save its figure, and return its markdown section."""
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.records.presets import NETWORK_PRESETS, train_network_preset
    from sgdscape.views.curvature_figure import plot_network_preset
    from sgdscape.views.step_figure import save_figure

    preset = NETWORK_PRESETS[name]
    IMAGES.mkdir(parents=True, exist_ok=True)
    save_figure(plot_network_preset(train_network_preset(preset)), IMAGES / f"{name}.png", dpi=80)
    return section(name, preset.story, preset.command, preset.explanation)


def render_chains(name: str) -> str:
    """Run chains preset ``name``, save its figure, and return its markdown section (with the
    measured note the figure function computes)."""
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.records.chain_presets import CHAIN_PRESETS, simulate_chains
    from sgdscape.views.chain_presets_figure import preset_figure
    from sgdscape.views.step_figure import save_figure

    preset = CHAIN_PRESETS[name]
    drawn = preset_figure(preset, simulate_chains(preset.setup))
    IMAGES.mkdir(parents=True, exist_ok=True)
    save_figure(drawn.figure, IMAGES / f"{name}.png", dpi=80)
    command = f"sgdscape chains --preset {name}"
    return section(name, preset.story, command, preset.explanation, drawn.note)


CHAINS_HEADER = [
    "# Many chains: SGD as a random process",
    "",
    "One SGD path is one draw of a random process. `sgdscape chains` runs thousands of copies "
    "of the same SGD at once, each with its own minibatches, and draws their distribution. "
    "`sgdscape chains --preset NAME` runs one of these; the measured sentence under each "
    "figure is recomputed with it.",
    "",
]


def main(names: list[str]) -> None:
    from sgdscape.records.chain_presets import CHAIN_PRESETS
    from sgdscape.records.presets import NETWORK_PRESETS, PRESETS

    runs = [*PRESETS, *NETWORK_PRESETS]
    sections = [render(name) for name in (names or runs) if name in runs]
    chain_sections = [
        render_chains(n) for n in (names or list(CHAIN_PRESETS)) if n in CHAIN_PRESETS
    ]
    if names:
        return
    header = [
        "# Gallery of phenomena",
        "",
        "Every classic behaviour of stochastic optimization on the notebook's tiny models, one "
        "command each. The figures are regenerated from the current code by "
        "`python scripts/make_gallery.py`; `tests/records/test_presets.py` checks each preset's "
        "quantitative signature on fresh data seeds. `sgdscape presets` lists them.",
        "",
    ]
    text = "\n".join(header + sections + CHAINS_HEADER + chain_sections)
    (ROOT / "docs" / "gallery.md").write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
