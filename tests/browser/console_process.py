"""`posbridge console` as a person starts it, in a process of its own, and the browser
that drives its page: Debian's chromium through Playwright (never Playwright's own
browser download). Used by the browser tests and by make bench."""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
ADDRESS = re.compile(r"POS console on (http://\S+/)")
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> "str | None":
    """Debian's chromium, if it is installed (.ci/run installs it)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_chromium(playwright):
    # --no-sandbox: the tests run as root in CI, where chromium's sandbox will not start
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      args=["--no-sandbox"])


def console_command(*args) -> list:
    return [sys.executable, "-m", "posbridge.cli", "console", *args]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the MicroPython board under the console)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


class ConsoleProcess:
    """posbridge console --port 0 (any free port); .url once it listens; .output what it
    printed; stop() is Ctrl-C."""

    def __init__(self, *args, timeout: float = 30.0):
        env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(console_command("--port", "0", *args), cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(timeout):
            self.stop()
            raise RuntimeError("the console did not start:\n" + self.output)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = ADDRESS.search(line)
            if m and self.url is None:
                self.url = m.group(1)
                self._listening.set()
        self._listening.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def board_pids(self) -> list[int]:
        return child_pids(self.proc.pid)

    def stop(self, timeout: float = 15.0) -> int:
        """Ctrl-C, and the exit code once it has stopped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def wait_until(predicate, timeout: float = 10.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()
