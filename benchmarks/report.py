"""docs/benchmarks.md is written by several targets (make bench, make endurance, make
fuzz): each owns one section, between markers, and replaces only that one, so a run of
one target keeps the others' latest figures."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
ORDER = ("bench", "endurance", "fuzz")


def _markers(name):
    return f"<!-- {name}: written by make {name} -->", f"<!-- end of {name} -->"


def write_section(name: str, text: str, doc: Path = DOC) -> None:
    assert name in ORDER
    old = doc.read_text() if doc.exists() else ""
    sections = {}
    for other in ORDER:
        begin, end = _markers(other)
        if begin in old and end in old:
            sections[other] = old[old.index(begin) + len(begin):old.index(end)].strip("\n")
    if not sections and old.strip() and name != "bench":
        sections["bench"] = old.strip("\n")   # a file from before the sections
    # one blank line between blocks, as the parts' own lists may end with one
    sections[name] = re.sub(r"\n{3,}", "\n\n", text.strip("\n"))
    parts = []
    for other in ORDER:
        if other in sections:
            begin, end = _markers(other)
            # a blank line ends a table before the marker
            parts.append(f"{begin}\n{sections[other]}\n\n{end}\n")
    doc.write_text("\n".join(parts))
