import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_catalogue_lists_every_registered_name_and_is_current():
    import sgdscape
    from sgdscape.presets import PRESETS

    text = (ROOT / "docs" / "catalogue.md").read_text()
    assert text == load_script("make_docs").catalogue(), "run python scripts/make_docs.py"
    for names in (
        sgdscape.MODELS,
        sgdscape.PROBLEMS,
        sgdscape.LOSSES,
        sgdscape.OPTIMIZERS,
        sgdscape.SCHEDULES,
        PRESETS,
    ):
        for name in names:
            assert f"`{name}`" in text


def test_readme_links_its_pages_and_images_that_exist():
    readme = (ROOT / "README.md").read_text()
    import re

    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_the_gallery_has_a_section_command_and_figure_for_every_preset():
    from sgdscape.presets import PRESETS

    text = (ROOT / "docs" / "gallery.md").read_text()
    for name, preset in PRESETS.items():
        assert f"sgdscape run --preset {name}\n" in text
        assert f"](images/gallery/{name}.png)" in text
        assert (ROOT / "docs" / "images" / "gallery" / f"{name}.png").is_file()
        assert preset.explanation in text
