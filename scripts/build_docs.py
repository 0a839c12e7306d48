"""Build the documentation site from nothing: gallery, players, tables, API reference.

Run: python scripts/build_docs.py [--site-dir DIR]   (needs ``pip install -e ".[docs,export]"``)

The hand-written pages live in ``docs/``. This script copies them into a staging folder
(``build/docs-src/``, git-ignored), generates the rest there from the code and data of this
checkout, and runs ``mkdocs build --strict`` (MkDocs Material + mkdocstrings) into ``site/``:

- ``getting-started.md``: the README from its start to the end of its tour (one source);
- ``gallery.md`` and ``gallery/NAME.md``: one page per preset of ``sgdscape.records.presets.PRESETS``
  with its figure (drawn by ``scripts/make_gallery.py``'s code), its one-line command and
  its standalone HTML player (``sgdscape.surfaces.export.html_page``) embedded in an iframe;
- ``performance-tables.md``: the tables of every ``docs/bench/*.json``;
- ``cli.md``'s last section: the ``--help`` of every command;
- ``api/*.md``: one page per public module, rendered by mkdocstrings from the docstrings.

Strict mode turns every warning (a broken link, an unknown reference, a docstring that does
not match its signature) into a failed build.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STAGE = ROOT / "build" / "docs-src"
SITE = ROOT / "site"

#: modules with their own API page, beyond the top-level ``sgdscape`` (what users import)
API_MODULES: dict[str, str] = {
    "sgdscape.records.presets": "Presets",
    "sgdscape.views.step_figure": "Matplotlib figures",
    "sgdscape.views.step_source": "What a step view draws",
    "sgdscape.views.style": "Palette and arrow rule",
    "sgdscape.views.overlays": "Comparison and basin figures",
    "sgdscape.views.animation": "GIF and MP4",
    "sgdscape.views.plotly_figures": "Plotly figures and the player",
    "sgdscape.surfaces.export": "Standalone HTML",
    "sgdscape.surfaces.widget": "Jupyter explorer",
    "sgdscape.views.network_figure": "Network figures",
    "sgdscape.views.curvature_figure": "Curvature figures",
    "sgdscape.networks.recording": "Stochastic view of a network",
    "sgdscape.networks.examples": "Network examples",
    "sgdscape.core.distributed": "Ray backend",
    "sgdscape.records.basins": "Basins of attraction",
    "sgdscape.errors": "Errors",
}

#: the player embedded in each gallery page: size in pixels and the most steps it visits
PLAYER_WIDTH, PLAYER_HEIGHT, PLAYER_STEPS = 760, 340, 60


def load_script(name: str):
    """A module of ``scripts/`` (they are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage_sources(stage: Path) -> None:
    """Copy ``docs/`` (Markdown, images) and the notebook into a fresh ``stage``."""
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(DOCS, stage, ignore=shutil.ignore_patterns("*.py", "bench", "__pycache__"))
    (stage / "notebooks").mkdir()
    shutil.copy2(ROOT / "notebooks" / "stochastic_landscape.ipynb", stage / "notebooks")
    # docs/ pages link the notebook as ../notebooks/ (right on a code host); on the site it
    # sits beside them
    for page in stage.glob("*.md"):
        text = page.read_text()
        page.write_text(text.replace("](../notebooks/", "](notebooks/"))


def getting_started() -> str:
    """The README's install commands and tour, with its links made relative to the site."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("\n## Experiments", 1)[0]
    tour = tour.split("\n", 1)[1]  # the site has its own title
    tour = re.sub(r"\]\(docs/([^)]+)\)", r"](\1)", tour)
    where_next = (
        "\n## Where next\n\n"
        "- [Concepts](concepts.md): what the two panels show and why they differ.\n"
        "- [The gallery](gallery.md): classic phenomena, each with a live player.\n"
        "- The user guide per surface: [command line](cli.md), [Python](python.md), "
        "[Jupyter](jupyter.md), [web app](webapp.md), [exports](exports.md), "
        "[real networks](networks.md), [Ray](ray.md).\n"
        "- The [API reference](api/index.md).\n"
    )
    return "# Getting started\n" + tour + where_next


def plain(text: str) -> str:
    """``text`` (a preset's story or explanation) with Markdown's emphasis marks escaped."""
    return re.sub(r"([*_])", r"\\\1", text)


def player_steps(n_steps: int) -> list[int]:
    """At most ``PLAYER_STEPS`` steps spread evenly over a run of ``n_steps`` (first and last kept)."""
    return sorted({int(s) for s in np.linspace(0, n_steps - 1, min(n_steps, PLAYER_STEPS))})


def gallery(stage: Path) -> list[str]:
    """Every preset's page, figure and player; returns the preset names in registry order."""
    import matplotlib

    matplotlib.use("Agg")
    import sgdscape
    from sgdscape.records.presets import PRESETS
    from sgdscape.surfaces.export import html_page

    make_gallery = load_script("make_gallery")
    make_gallery.IMAGES = stage / "images" / "gallery"  # the figures are drawn afresh here
    players = stage / "gallery" / "players"
    players.mkdir(parents=True)
    index = [
        "# Gallery of phenomena",
        "",
        "Every classic behaviour of stochastic optimization on the notebook's tiny models, one "
        "command each. Each page shows the preset's figure, its command and a live player of "
        "its run (a standalone page made by `sgdscape export --html`: drag the slider or press "
        "play; it needs no network). `tests/records/test_presets.py` checks each preset's quantitative "
        "signature on fresh data seeds; `sgdscape presets` lists them.",
        "",
        "| preset | what it shows |",
        "| --- | --- |",
    ]
    names = list(PRESETS)
    for number, (name, preset) in enumerate(PRESETS.items()):
        make_gallery.render(name)  # writes images/gallery/NAME.png in the stage
        result = sgdscape.run(preset.config)
        steps = player_steps(result.trajectory.n_steps)
        page = html_page(
            result,
            steps=steps,
            width=PLAYER_WIDTH,
            height=PLAYER_HEIGHT,
            title=f"sgdscape run --preset {name}",
        )
        (players / f"{name}.html").write_text(page, encoding="utf-8")
        compared = (
            f"\n\nThe figure overlays the preset's {1 + len(result.others)} runs; the player "
            "below shows the first of them, step by step."
            if result.others
            else ""
        )
        shown = (
            f"all {len(steps)} steps"
            if len(steps) == result.trajectory.n_steps
            else f"{len(steps)} of its {result.trajectory.n_steps} steps, evenly spaced"
        )
        (stage / "gallery" / f"{name}.md").write_text(
            "\n".join(
                [
                    f"# `{name}`",
                    "",
                    f"*{plain(preset.story)}*",
                    "",
                    "```bash",
                    f"sgdscape run --preset {name}",
                    "```",
                    "",
                    f"![{name}](../images/gallery/{name}.png)",
                    "",
                    plain(preset.explanation) + compared,
                    "",
                    "## Step through it",
                    "",
                    f"The run's {shown}. [Open the player on its own page](players/{name}.html).",
                    "",
                    f'<iframe class="sgdscape-player" src="players/{name}.html" '
                    f'title="player of the {name} preset" loading="lazy" '
                    f'style="width: 100%; height: {PLAYER_HEIGHT + 150}px; border: 0;"></iframe>',
                    "",
                    " · ".join(
                        ([f"[← `{names[number - 1]}`]({names[number - 1]}.md)"] if number else [])
                        + ["[all presets](../gallery.md)"]
                        + (
                            [f"[`{names[number + 1]}` →]({names[number + 1]}.md)"]
                            if number + 1 < len(names)
                            else []
                        )
                    ),
                    "",
                ]
            )
        )
        index.append(f"| [`{name}`](gallery/{name}.md) | {plain(preset.story)} |")
    from sgdscape.records.presets import NETWORK_PRESETS

    for name, network in NETWORK_PRESETS.items():
        make_gallery.render_network(name)  # writes images/gallery/NAME.png in the stage
        (stage / "gallery" / f"{name}.md").write_text(
            "\n".join(
                [
                    f"# `{name}`",
                    "",
                    f"*{plain(network.story)}*",
                    "",
                    "```bash",
                    network.command,
                    "```",
                    "",
                    f"![{name}](../images/gallery/{name}.png)",
                    "",
                    plain(network.explanation),
                    "",
                    "A network preset trains a real network several ways from one init and "
                    "measures the top Hessian eigenvalue along each run (Lanczos on "
                    "Hessian-vector products); it writes `preset.npz` and the figure.",
                    "",
                    "[all presets](../gallery.md)",
                    "",
                ]
            )
        )
        index.append(f"| [`{name}`](gallery/{name}.md) | {plain(network.story)} |")
    index += [""]
    for name in [*PRESETS, *NETWORK_PRESETS]:
        index.append(f"[![{name}](images/gallery/{name}.png){{ width=360 }}](gallery/{name}.md)")
    (stage / "gallery.md").write_text("\n".join(index) + "\n")
    return names


def _number(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    return f"{value:.3g}"


def performance_tables() -> str:
    """One table per ``docs/bench/*.json``: every row as the suite recorded it."""
    lines = [
        "# Benchmark tables",
        "",
        "Generated by `scripts/build_docs.py` from the JSON files in `docs/bench/` (written by "
        "`sgdscape bench --json` and `benchmarks/bench_foundation.py --json`); "
        "[Performance](performance.md) explains the rows, the machine and how to reproduce them. "
        "*ratio* is the baseline's time over sgdscape's; *-* means not applicable.",
        "",
    ]
    for path in sorted((DOCS / "bench").glob("*.json")):
        record = json.loads(path.read_text())
        machine = record.get("machine", {})
        lines += [
            f"## `{path.name}`",
            "",
            f"{record.get('benchmark', '?')} benchmark{' (quick)' if record.get('quick') else ''}"
            f" on {machine.get('cores', '?')} {machine.get('cpu', '?')} cores, torch "
            f"{machine.get('torch', '?')}, {machine.get('torch_threads', '?')} torch threads, "
            f"CUDA {machine.get('cuda') or 'none'}, 1-minute load average "
            f"{machine.get('load_average_1min', '?')} at the start.",
            "",
        ]
        if record.get("targets"):
            lines += ["| target | met |", "| --- | --- |"]
            lines += [f"| {k} | {'yes' if v else 'no'} |" for k, v in record["targets"].items()]
            lines.append("")
        lines += [
            "| row | device | sizes | time | evaluations/s | baseline | ratio | notes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in record.get("rows", []):
            notes = "; ".join(f"{k}: {v}" for k, v in (row.get("extra") or {}).items())
            cells = [
                row.get("name", ""),
                row.get("device", ""),
                row.get("sizes", ""),
                _number(row.get("seconds"), "s"),
                _number(row.get("evaluations_per_s")),
                row.get("baseline", "") or "-",
                _number(row.get("ratio")),
                notes or "-",
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def cli_help() -> str:
    """The ``--help`` of ``sgdscape`` and of each of its commands, as plain text."""
    import typer
    from typer.testing import CliRunner

    from sgdscape.surfaces.cli import app

    command = typer.main.get_command(app)
    names = [None, *getattr(command, "commands", {})]  # a group's commands, in --help order
    lines = [
        "## Every command's help",
        "",
        "Generated from the CLI by `scripts/build_docs.py`.",
        "",
    ]
    runner = CliRunner()
    for name in names:
        argv = [*([name] if name else []), "--help"]
        env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}  # plain text, 100 wide
        shown = runner.invoke(app, argv, prog_name="sgdscape", env=env)
        if shown.exit_code != 0:
            raise RuntimeError(f"sgdscape {' '.join(argv)} failed: {shown.output}")
        lines += [f"### `{' '.join(['sgdscape', *argv[:-1]])}`", ""]
        lines += ["```text", shown.output.rstrip(), "```", ""]
    return "\n".join(lines)


def api_pages(stage: Path) -> None:
    """``api/index.md`` (the names of ``sgdscape.__all__``) and one page per public module."""
    import sgdscape

    api = stage / "api"
    api.mkdir()
    modules = "\n".join(
        f"- [`{module}`]({module.split('.', 1)[1]}.md): {title}"
        for module, title in API_MODULES.items()
    )
    blocks = []
    for name in sgdscape.__all__:
        module = getattr(getattr(sgdscape, name), "__module__", None) or ""
        if module.rsplit(".", 1)[-1] == name:
            # a function named like its module (landscape, run, train): griffe reads
            # ``sgdscape.NAME`` as the module, so the function is documented from there
            blocks.append(
                f"::: {module}.{name}\n    options:\n      show_root_heading: true\n"
                f'      heading: "sgdscape.{name}"\n      toc_label: "{name}"\n'
            )
        else:
            blocks.append(f"::: sgdscape.{name}\n    options:\n      show_root_heading: true\n")
    (api / "index.md").write_text(
        "# API reference: `sgdscape`\n\n"
        "Generated from the docstrings by mkdocstrings. `import sgdscape` gives the names "
        "below (`sgdscape.__all__`); everything else may move between releases, except the "
        "modules users import for figures, exports and presets:\n\n"
        f"{modules}\n\n" + "\n".join(blocks)
    )
    for module, title in API_MODULES.items():
        (api / f"{module.split('.', 1)[1]}.md").write_text(
            f"# {title}: `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
        )


def build(site_dir: Path, stage: Path = STAGE) -> float:
    """Stage, generate and build the site into ``site_dir``; returns the seconds it took."""
    start = time.perf_counter()
    stage_sources(stage)
    (stage / "getting-started.md").write_text(getting_started())
    gallery(stage)
    print(f"build_docs: gallery of every preset in {time.perf_counter() - start:.0f} s", flush=True)
    (stage / "performance-tables.md").write_text(performance_tables())
    cli_page = stage / "cli.md"
    cli_page.write_text(cli_page.read_text().rstrip() + "\n\n" + cli_help())
    api_pages(stage)
    print(
        f"build_docs: pages generated in {time.perf_counter() - start:.0f} s; mkdocs --strict",
        flush=True,
    )
    env = {**os.environ, "SGDSCAPE_DOCS_SRC": str(stage), "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--site-dir", type=Path, default=SITE, help="output folder (site/)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    seconds = build(args.site_dir.resolve())
    print(f"built {args.site_dir} in {seconds:.0f} s; open {args.site_dir / 'index.html'}")


if __name__ == "__main__":
    main()
