"""The project's docs stand alone: every link they make lands on a file of this repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_PATH = re.compile(r"`(\.\./[^`\s]+)`")  # a path up the tree written in code: `../x`
OUTSIDE = re.compile(r"\.\./shared|shared/seeds|CONTRACTS\.md|ARCHITECTURE\.md|CONVENTIONS\.md")


def links(text: str) -> list[str]:
    """The relative targets of the text's markdown links (not URLs, not anchors)."""
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_lands_inside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    for target in links(text):
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target} leaves the repository"
        assert path.exists(), f"{target} does not exist in the repository"
    for target in CODE_PATH.findall(text):
        assert (doc.parent / target).resolve().is_relative_to(ROOT), f"{target} leaves it"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_names_a_file_a_clone_does_not_have(doc: Path) -> None:
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        assert not OUTSIDE.search(line), f"line {number}: {line.strip()}"


def test_the_check_sees_a_link_out_of_the_repository() -> None:
    text = "See [the design](../../shared/ARCHITECTURE.md) and [the API](native-api.md#errors)."
    up, api = links(text)
    assert not (ROOT / "docs" / up).resolve().is_relative_to(ROOT)
    assert (ROOT / "docs" / api.split("#")[0]).exists()
    assert OUTSIDE.search(text)
