"""The README stays a front page (at most 200 lines), and every pointer into the documentation still lands:
the links of the README and docs/*.md, and the `(docs/operations.md, "Section")` a message or config names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")
#: `(docs/operations.md, "Scaling out")` in a message or a comment; `\"` as written inside a Python string.
SECTION_POINTER = re.compile(r'\((README|docs/[\w./-]+\.md), \\?"([^"\\]+)\\?"\)')
POINTING_FILES = ["docker-compose.yml", "prefect.yaml", *(f"{p}/*.py" for p in ("core", "mnist", "runtime", "tracking", "flows", "cli"))]


def headings(page: Path) -> list[str]:
    """The headings of a Markdown page, outside code blocks."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_the_readme_is_a_front_page_of_at_most_200_lines():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move detail to docs/ and link it"


def test_the_readme_names_the_commands_the_makefile_has():
    readme = (REPO / "README.md").read_text()
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M))
    for command in ("run", "test", "test-fast"):
        assert f"make {command}" in readme, f"the README does not name `make {command}`"
        assert command in targets, f"the README names `make {command}`, which the Makefile lacks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    for target in LINK.findall(page.read_text()):
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if fragment and linked.suffix == ".md":
            anchors = [anchor(h) for h in headings(linked)]
            assert fragment in anchors, f"{page.name} links to {target}: {linked.name} has no such heading"


def test_every_section_a_message_or_config_names_exists():
    pointers = [
        (source, *m.groups())
        for pattern in POINTING_FILES
        for source in sorted(REPO.glob(pattern))
        for m in SECTION_POINTER.finditer(source.read_text())
    ]
    assert pointers, "no (docs/…, \"Section\") pointer found: the pattern no longer matches how the code writes them"
    for source, doc, section in pointers:
        page = REPO / ("README.md" if doc == "README" else doc)
        assert page.exists(), f"{source.relative_to(REPO)} points to {doc}, which does not exist"
        assert any(h.endswith(section) for h in headings(page)), (
            f'{source.relative_to(REPO)} points to {doc}, "{section}": no such heading there'
        )
