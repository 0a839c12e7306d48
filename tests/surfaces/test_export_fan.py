"""``sgdscape export --html FILE --fan``: the page carries the fan of next steps; a run (or
a request) that cannot have one stops in one line with exit status 2 and writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sgdscape.surfaces.cli import app

pytest.importorskip("plotly")

SMALL = ["--grid", "15", "--samples", "12", "--epochs", "1", "-q"]


def frames_of(page: Path) -> dict:
    """The player's frames, parsed from the page's ``sgdscape-frames`` script element."""
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script id="sgdscape-frames" type="application/json">(.*?)</script>', text)
    assert found is not None
    return json.loads(found.group(1))


def test_export_html_with_fan_packs_the_fan_on_the_page(tmp_path: Path) -> None:
    runner = CliRunner()
    plain = runner.invoke(app, ["export", *SMALL, "--html", str(tmp_path / "plain.html")])
    fan = runner.invoke(app, ["export", *SMALL, "--fan", "--html", str(tmp_path / "fan.html")])
    assert plain.exit_code == 0 and fan.exit_code == 0, (plain.output, fan.output)
    assert frames_of(tmp_path / "plain.html")["fan"] is None
    packed = frames_of(tmp_path / "fan.html")["fan"]
    assert packed["points"]["shape"] == [12, 2, 12]  # 12 steps, x and y, 12 samples
    assert len(packed["label"]) == 12 and all("one per sample" in t for t in packed["label"])
    assert "the fan of next steps" in (tmp_path / "fan.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--model", "relu-unit-bias", "--init", "1,1,0.5", "--html", "{out}/a.html"],
            "the fan of next steps is drawn for a 2-parameter model only; relu-unit-bias has 3 "
            "parameters.",
        ),
        (["--inits", "random:3", "--html", "{out}/a.html"], "single-init"),
        (["--surface", "{out}/a.html"], "--fan draws on a run's --html, --gif or --mp4"),
        (["--view", "{out}/none.npz", "--html", "{out}/a.html"], "not on a network's --view"),
    ],
)
def test_export_fan_refuses_in_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    args = [arg.replace("{out}", str(tmp_path)) for arg in extra]
    out = CliRunner().invoke(app, ["export", *SMALL, "--fan", *args])
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), out.output
    assert message in lines[0], lines[0]
    assert "Traceback" not in out.output
    assert list(tmp_path.iterdir()) == []  # nothing written
