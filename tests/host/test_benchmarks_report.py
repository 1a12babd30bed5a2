"""docs/benchmarks.md: each target rewrites its own section only, in a tidy form."""
from benchmarks import report


def test_a_target_replaces_its_section_and_keeps_the_others(tmp_path):
    doc = tmp_path / "benchmarks.md"
    report.write_section("bench", "# Benchmarks\n\n| a |\n|---|\n| 1 |\n", doc)
    report.write_section("fuzz", "## Fuzzing\n\nold figures", doc)
    report.write_section("fuzz", "## Fuzzing\n\nnew figures", doc)
    text = doc.read_text()
    assert "old figures" not in text and text.count("new figures") == 1
    assert text.index("# Benchmarks") < text.index("## Fuzzing")


def test_a_table_ends_before_its_marker_and_blank_lines_do_not_pile_up(tmp_path):
    doc = tmp_path / "benchmarks.md"
    report.write_section("bench", "| a |\n|---|\n| 1 |\n\n\n\n## Console\n\n| b |", doc)
    text = doc.read_text()
    assert "\n\n\n" not in text
    assert "| b |\n\n<!-- end of bench -->" in text
