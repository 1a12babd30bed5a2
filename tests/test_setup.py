"""What tests/conftest.py relies on when it puts firmware/ and tests/firmware/ first on
the import path of every CPython test."""
import sys
from importlib.machinery import PathFinder

from tests.conftest import FIRMWARE, FIRMWARE_TESTS


def _module_names(directory):
    return sorted(p.stem for p in directory.glob("*.py")
                  if not p.stem.startswith("test_") and p.stem != "conftest")


def test_no_board_module_shadows_a_standard_or_installed_one():
    ours = {str(FIRMWARE), str(FIRMWARE_TESTS), "", "."}
    elsewhere = [p for p in sys.path if p not in ours]
    clashes = [name for d in (FIRMWARE, FIRMWARE_TESTS) for name in _module_names(d)
               if name in sys.stdlib_module_names or name in sys.builtin_module_names
               or PathFinder.find_spec(name, elsewhere) is not None]
    assert clashes == []


def test_the_reference_vectors_are_found():
    import reference_vectors
    ref = reference_vectors.load()
    assert ref["transactions"] and ref["iso9564_format4_example"]
