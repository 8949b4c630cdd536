"""The project's docs stand alone: every link they make lands on a file of this repository,
and every #anchor on a heading of the file it names."""

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


FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces
    to hyphens (markdown's own marks go first: code ticks, emphasis, a link's target)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a markdown file has: one per heading outside code fences, a repeated
    one numbered `-1`, `-2`... as GitHub numbers them."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else HEADING.match(line)
        if heading:
            base = slug(heading.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def fragments(doc: Path) -> list[tuple[str, Path, str]]:
    """(link, file it names, anchor) for each of the doc's links that names an anchor."""
    out = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        out.append((target, (doc.parent / path).resolve() if path else doc, anchor))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_anchor_lands_on_a_heading(doc: Path) -> None:
    for target, path, anchor in fragments(doc):
        assert path.suffix == ".md" and path.exists(), f"{target}: no such markdown file"
        assert anchor in anchors(path.read_text()), f"{target}: no heading has that anchor"


def test_the_anchor_check_knows_githubs_anchors(tmp_path: Path) -> None:
    text = (
        "# Title\n## 6. Simulated devices in their own processes\n### Login and TLS\n"
        "## Scale-out (issue #22)\n## `--fleet-size N`\n## Errors\n## Errors\n"
        "```\n# not a heading\n```\n"
    )
    assert anchors(text) == {
        "title", "6-simulated-devices-in-their-own-processes", "login-and-tls",
        "scale-out-issue-22", "--fleet-size-n", "errors", "errors-1",
    }  # fmt: skip
    doc = tmp_path / "a.md"
    doc.write_text(text + "[ok](#errors-1) [bad](#not-a-heading) [web](https://x.org/#y)\n")
    found = {target: anchor in anchors(path.read_text()) for target, path, anchor in fragments(doc)}
    assert found == {"#errors-1": True, "#not-a-heading": False}
