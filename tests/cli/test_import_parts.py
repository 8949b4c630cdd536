"""`switchgear devices import` sends a large file in parts: each row's line stays the file's."""

from __future__ import annotations

from pathlib import Path

from switchgear.cli.importing import PART_ROWS, parts
from switchgear.importrows import parse_csv


def test_a_quoted_field_over_several_lines_is_never_cut_between_two_parts(
    tmp_path: Path,
) -> None:
    rows = [f"SPG-PART-{i:05d},SHPLG-1,Lamp {i}," for i in range(PART_ROWS - 2)]
    rows.append('SPG-PART-LONG,SHPLG-1,"Hall\nlamp\nby the door",')  # lines 5000-5002
    rows += [f"SPG-PART-{i:05d},NOPE-9,Lamp {i}," for i in range(PART_ROWS, PART_ROWS + 3)]
    text = "serial,model,name,tags\n" + "\n".join(rows) + "\n"
    path = tmp_path / "devices.csv"
    path.write_text(text)
    header, chunks = parts(path)
    assert header is not None and len(chunks) == 2
    sent = [
        (offset + line, fields)
        for offset, chunk in chunks
        for line, fields in parse_csv("\n".join([header, *chunk]) + "\n")
    ]
    assert sent == parse_csv(text)  # the same rows, each at its line in the file
    assert [line for line, _ in sent[-4:]] == [PART_ROWS, PART_ROWS + 3, PART_ROWS + 4,
                                               PART_ROWS + 5]  # fmt: skip
