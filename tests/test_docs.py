import re
import sys

from repo_scripts import ROOT, load_script

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_named_script(name):
    return load_script(f"scripts/{name}.py")


def test_the_catalogue_lists_every_registered_name_and_is_current():
    import sgdscape
    from sgdscape.records.presets import PRESETS

    text = (ROOT / "docs" / "catalogue.md").read_text()
    assert text == load_named_script("make_docs").catalogue(), "run python scripts/make_docs.py"
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
    from sgdscape.records.presets import PRESETS

    text = (ROOT / "docs" / "gallery.md").read_text()
    for name, preset in PRESETS.items():
        assert f"sgdscape run --preset {name}\n" in text
        assert f"](images/gallery/{name}.png)" in text
        assert (ROOT / "docs" / "images" / "gallery" / f"{name}.png").is_file()
        assert preset.explanation in text


def test_the_gallery_and_the_readme_show_the_network_presets():
    from sgdscape.records.presets import NETWORK_PRESETS

    text = (ROOT / "docs" / "gallery.md").read_text()
    for name, preset in NETWORK_PRESETS.items():
        assert f"{preset.command}\n" in text
        assert f"](images/gallery/{name}.png)" in text
        assert (ROOT / "docs" / "images" / "gallery" / f"{name}.png").is_file()
        assert preset.explanation in text
    readme = (ROOT / "README.md").read_text()
    assert "](docs/images/gallery/edge-of-stability.png)" in readme


def _readme_commands():
    return load_script(".ci/readme_commands.py")


def test_ci_runs_the_readmes_two_commands_read_from_the_readme_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv-ci" in ci
    assert ". .venv-ci/bin/activate" in ci
    # CI does not carry its own copy of the commands: it reads them from the README and runs them.
    assert 'run_command="$(python .ci/readme_commands.py run)"' in ci
    assert 'test_command="$(python .ci/readme_commands.py test)"' in ci
    assert 'bash -euo pipefail -c "$run_command"' in ci
    assert ci.rstrip().endswith('bash -euo pipefail -c "$test_command"')
    assert "pip install" not in ci.replace("pip install -q -c requirements/constraints.txt", "")


def test_the_readme_commands_install_pinned_versions_and_every_extra_the_tests_need():
    commands = _readme_commands()
    run, test = commands.readme_command("run"), commands.readme_command("test")
    assert run.endswith("&& sgdscape run")
    assert test.endswith("&& python -m pytest")
    for command in (run, test):
        assert command.startswith("pip install -c requirements/constraints.txt torch==2.13.0 ")
    extras = set(commands.test_extras().split(","))
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    # `bench` holds only the peer library that `sgdscape bench --compare` measures against.
    assert extras == declared - {"bench"}


def test_the_constraints_pin_every_direct_dependency_and_torch_without_a_local_label():
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(_readme_commands().test_extras().split(","))
    requirements = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra in wanted:
            requirements += items
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned: run scripts/lock_requirements.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    assert pins["torch"] == "2.13.0"


def test_every_doc_that_shows_the_install_and_run_command_shows_the_readmes():
    run = _readme_commands().readme_command("run")
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in page.read_text(encoding="utf-8").splitlines():
            if "&& sgdscape run" in line and line.lstrip().startswith("pip install"):
                assert line.split("#")[0].strip() == run, (page.name, line)


def test_the_architecture_page_names_every_module_and_only_modules_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    tree = text[text.index("```text") : text.index("```", text.index("```text") + 7)]
    package = ROOT / "src" / "sgdscape"
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    named = set(re.findall(r"\b([a-z_]+\.py)\b", tree))
    unnamed = sorted(m for m in modules if m.rsplit("/", 1)[-1] not in named)
    assert not unnamed, f"docs/architecture.md's tree does not show {unnamed}"
    basenames = {m.rsplit("/", 1)[-1] for m in modules}
    absent = sorted(named - basenames - {"__init__.py"})
    assert not absent, f"docs/architecture.md's tree shows modules that do not exist: {absent}"
    for folder in ("core", "networks", "records", "views", "surfaces", "io"):
        assert f"├── {folder}/" in tree or f"└── {folder}/" in tree
