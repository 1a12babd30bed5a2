"""What machine and when, for the figures written to docs/benchmarks.md."""
import datetime
import os
import platform


def describe() -> str:
    """e.g. "2026-11-30 22:50 UTC, Intel(R) Xeon(R) ... (2 CPUs), Linux 6.1, Python 3.12.3"."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}, {cpu} ({os.cpu_count()} CPUs), {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")
