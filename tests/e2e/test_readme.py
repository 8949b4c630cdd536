"""The README's "Try it" section, run as a reader runs it: each shell snippet with bash, in
the folder of a running demo, against that demo.

Each runs with `bash -e` and a curl configured to fail on an HTTP error status
(`fail-with-body` in the folder's .curlrc), so a refused request fails its snippet.
The only change made to a snippet is the demo's address: the README says
http://127.0.0.1:8080, the test's demo listens on a free port (tests run side by side).
A snippet that streams must end by itself or is cut off after STREAM_S; it passes if it
printed something by then. A snippet holding a placeholder for the reader to fill in
(`<...>`) cannot run as written and is skipped, named in the test report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.proc import Demo, start_demo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8080"
STREAM_S = 10.0
SNIPPET_S = 120.0  # a snippet that does not stream: a few CLI starts on a busy machine
STREAMING = re.compile(r"--no-buffer|\s-N\s|--follow|/events|/sub/|/ws/")
PLACEHOLDER = re.compile(r"<[a-z_ ]+[^>]*>")


def try_it_snippets(readme: str) -> list[str]:
    """The shell snippets of the README's "Try it" section: indented or fenced blocks."""
    section = readme.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    snippets: list[str] = []
    for fenced in re.findall(r"```(?:sh|bash|shell|console)?\n(.*?)```", section, re.S):
        snippets.append(fenced.strip())
    section = re.sub(r"```.*?```", "", section, flags=re.S)
    block: list[str] = []
    for line in [*section.splitlines(), "end"]:
        if line.startswith("    ") or (block and not line.strip()):
            block.append(line[4:])
        elif block:
            snippets.append("\n".join(block).strip())
            block = []
    return [s for s in snippets if s]


SNIPPETS = try_it_snippets((ROOT / "README.md").read_text())


def test_the_try_it_section_has_snippets_to_run() -> None:
    assert len(SNIPPETS) >= 5
    assert any("curl" in s for s in SNIPPETS) and any("switchgear" in s for s in SNIPPETS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo, in a folder laid out as after `make demo`: ./switchgear-demo.json, .venv."""
    tmp = tmp_path_factory.mktemp("readme")
    d = start_demo(tmp, tmp / "switchgear-demo.db", extra=("--speed", "1"))  # as `make demo`
    (tmp / "switchgear-demo.json").symlink_to(d.credentials_path)
    (tmp / ".venv").symlink_to(Path(sys.prefix))
    # curl's own config, not the snippets: an HTTP error status makes curl, so bash -e, fail
    (tmp / ".curlrc").write_text("fail-with-body\n")
    try:
        yield d
    finally:
        d.stop()


def run(snippet: str, demo: Demo) -> tuple[int | None, str, str]:
    """Exit status (None when cut off as a stream), stdout and stderr of one snippet."""
    script = snippet.replace(README_URL, demo.base_url)
    proc = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=demo.credentials_path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a cut-off stream ends whole
        env={**os.environ, "COLUMNS": "80", "CURL_HOME": str(demo.credentials_path.parent)},
    )
    try:
        out, err = proc.communicate(timeout=STREAM_S if STREAMING.search(snippet) else SNIPPET_S)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        return None, out, err


def refusals(out: str) -> list[str]:
    """Answers on stdout that are errors: a JSON object naming an error or a 4xx/5xx."""
    bad = []
    for line in out.splitlines():
        try:
            doc = json.loads(line.removeprefix("data:").strip())
        except ValueError:
            continue
        if isinstance(doc, dict) and (
            any(isinstance(doc.get(k), int) and doc[k] >= 400 for k in ("status", "statusCode"))
            or doc.get("error") not in (None, False, 0, "", "none")
            or doc.get("success") is False
        ):
            bad.append(line)
    return bad


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_each_try_it_snippet_runs_as_written(snippet: str, demo: Demo) -> None:
    if PLACEHOLDER.search(snippet):
        pytest.skip(f"a placeholder for the reader: {PLACEHOLDER.search(snippet)[0]}")  # type: ignore[index]
    code, out, err = run(snippet, demo)
    if code is None:
        assert STREAMING.search(snippet), f"did not end in {SNIPPET_S} s:\n{snippet}"
    else:
        assert code == 0, f"{snippet}\nexit {code}\n{err}"
    assert out.strip(), f"printed nothing:\n{snippet}\n{err}"
    assert "Traceback" not in out + err and "error:" not in err, err
    assert not refusals(out), f"{snippet}\n{out}"
