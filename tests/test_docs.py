"""The code in README.md and docs/*.md works: every Python block runs, and every ``aekit`` command line in
a shell block parses with today's options (running them all would take hours of MNIST training; the
tests of each command run them on small data)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aekit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


def command_lines(page: Path) -> list[list[str]]:
    """Each ``aekit ...`` command of the page's shell blocks, as argv (one line may hold several)."""
    commands = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;", line.split("  #")[0].split(" # ")[0]):
                words = shlex.split(part)
                if words and words[0] == "aekit":
                    commands.append(words[1:])
    return commands


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path):
    """The page's Python blocks, run in order in one fresh interpreter (a new registry), in an empty folder."""
    code = "\n\n".join(blocks(page, "python"))
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}  # small models: one thread is faster
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("page", [p for p in PAGES if command_lines(p)], ids=lambda p: p.name)
def test_command_lines_parse(page):
    for argv in command_lines(page):
        if any(a.startswith("$") for a in argv):
            continue
        build_parser(argv).parse_args(argv)  # an unknown or renamed option raises ConfigError


def anchors(page: Path) -> set[str]:
    """The ids GitHub gives the page's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    """Every relative link (and image) of the page names a file of the repository, and every #anchor a
    heading of the page it points to."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here (no internet)
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading '{anchor}')")
    assert not broken, f"{page.name}: broken links: {broken}"
