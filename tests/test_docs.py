"""The README and docs/: short README, links that resolve, and every `retarget` command in a fenced block parses as written.

Commands whose flags parse are the documented ones; the `random:tiny` ones in the README are also run end to end.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import needs_shared

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/*.md"))]


def fenced_commands(page: Path) -> list[str]:
    """Every `retarget ...` command of a page's ```bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("retarget"):
                commands.append(line)
    return commands


def parse(command: str) -> None:
    """Parse with the command's own parser (argparse exits on an unknown flag or a bad value)."""
    import importlib

    from retarget.cli import SUBCOMMANDS
    from retarget.cli.render import headless_parser

    argv = shlex.split(re.sub(r"\[[^\]]*\]", "", command))[1:]  # [optional parts] dropped
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(f"retarget.cli.{argv[0]}")
        parser = getattr(module, f"{argv[0]}_parser", None)
        if parser is not None:
            parser().parse_args(argv[1:])
        return
    if argv:
        headless_parser().parse_args(argv)


def test_the_readme_fits_a_screen_or_two():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_command_parses(page):
    for command in fenced_commands(page):
        try:
            parse(command)
        except SystemExit as err:
            pytest.fail(f"{page.name}: `{command}` does not parse (exit {err.code})")


def test_the_readme_has_the_setup_main_and_test_commands():
    commands = fenced_commands(ROOT / "README.md")
    text = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[gui,train,dev]"' in text and "python -m pytest -rs" in text
    assert any(c.startswith("retarget --headless") and "--driver" in c for c in commands)


@needs_shared
def test_the_readme_test_model_command_runs_as_written(tmp_path, shared_dir, landmarker_path, monkeypatch):
    """The README's try-it command, with its placeholder files replaced by real photos."""
    import shutil

    from retarget.cli import main

    command = re.search(r"`(retarget --headless --models random:tiny[^`]*)`", (ROOT / "README.md").read_text()).group(1)
    shutil.copy(shared_dir / "media" / "identity_freeman.jpg", tmp_path / "me.jpg")
    shutil.copy(shared_dir / "media" / "expression_exp1_rgba.png", tmp_path / "smile.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RETARGET_FACE_LANDMARKER", str(landmarker_path))
    assert main(shlex.split(command)[1:] + ["--steps", "1"]) == 0
    assert (tmp_path / "x.png").is_file()
