"""posbridge console, from start to a clean stop: the server listens (or says the port
is taken), the board boots on a flash directory of its own, and Ctrl-C (or SIGTERM)
closes the pages, stops the bridge and ends the MicroPython process before returning."""
import asyncio
import signal
import tempfile
from pathlib import Path

from ..board.emulator import FIRMWARE_DIR
from .hub import Hub
from .server import serve
from .terminal import Terminal


def run(issuer, host: str, port: int, on_listening, heap: str = "64k",
        firmware_dir: Path = FIRMWARE_DIR):
    """Until Ctrl-C. server.PortInUse if the port is taken; EmulatorError if the board
    cannot start."""
    with tempfile.TemporaryDirectory(prefix="pos-console-flash-") as flash:
        hub = Hub()
        terminal = Terminal(issuer, Path(flash), hub, heap=heap, firmware_dir=firmware_dir)
        try:
            asyncio.run(_serve_until_signal(terminal, hub, host, port, on_listening))
        finally:
            terminal.stop()


async def _serve_until_signal(terminal, hub, host, port, on_listening):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(terminal, hub, host, port, stop, on_listening)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
