"""Putting the firmware and a terminal's records on a board with mpremote.

The board's flash root gets the precompiled modules, main.py, and (when given) the
state records of `posbridge provision` (terminal.json, keys.bin). One mpremote
session copies everything and resets the board, so it boots the new firmware."""
import subprocess
from pathlib import Path

from .tools import beside_python

STATE_RECORDS = ("terminal.json", "keys.bin")


class DeployError(RuntimeError):
    pass


def mpremote_command() -> str:
    return beside_python("mpremote") or "mpremote"


def deploy_command(port: str, build_dir: Path, state_dir: "Path | None" = None) -> list:
    """The mpremote command line (chained with "+") for one deployment."""
    files = sorted(build_dir.glob("*.mpy"))
    main = build_dir / "main.py"
    if not files or not main.is_file():
        raise DeployError(f"no firmware in {build_dir}: run posbridge firmware build first")
    cmd = [mpremote_command(), "connect", port, "fs", "cp"]
    cmd += [str(f) for f in files] + [str(main), ":"]
    if state_dir is not None:
        records = [state_dir / name for name in STATE_RECORDS]
        missing = [r.name for r in records if not r.is_file()]
        if missing:
            raise DeployError(f"{state_dir} has no {', '.join(missing)}: "
                              "run posbridge provision first")
        cmd += ["+", "fs", "cp"] + [str(r) for r in records] + [":"]
    return cmd + ["+", "reset"]


def deploy(port: str, build_dir: Path, state_dir: "Path | None" = None, run=None):
    cmd = deploy_command(port, build_dir, state_dir)
    run = run or subprocess.run
    try:
        proc = run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise DeployError("mpremote not found: pip install mpremote (make demo does)")
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise DeployError(f"mpremote failed on {port}: " + (detail[-1] if detail else
                                                            f"exit {proc.returncode}"))
    return cmd
