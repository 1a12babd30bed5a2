"""The set-up the board benchmarks share: the issuer on a throw-away copy of the demo
data, and the emulated board booted and bridged to it, torn down in the right order."""
import contextlib
import tempfile
import threading
from pathlib import Path

from posbridge.bridge import Bridge
from posbridge.issuer import Issuer
from posbridge.issuer.demo_data import load_demo
from posbridge.issuer.ledger import Ledger
from posbridge.link.host_link import HostLink, LinkClosed
from posbridge.ports import open_port


@contextlib.contextmanager
def demo_issuer(prefix: str = "pos-bench-"):
    """An issuer on a new database of the demo data in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        db = Path(tmp) / "issuer.sqlite"
        ledger = Ledger.create(db)
        load_demo(ledger)
        ledger.close()
        issuer = Issuer.open(db)
        try:
            yield issuer
        finally:
            issuer.close()


@contextlib.contextmanager
def bridged(emulator, issuer=None, frame_log=None, link_wrapper=None):
    """The emulator's firmware started and a bridge serving it from `issuer` (none: the
    bridge alone; through `link_wrapper(link)` when given); yields the bridge. The board
    is stopped, the link and port closed on the way out, whatever happened."""
    stop = threading.Event()
    port = link = None
    try:
        port = open_port(emulator.start())
        link = HostLink(port, frame_log=frame_log).start()
        bridge = Bridge(link_wrapper(link) if link_wrapper else link, issuer=issuer)

        def serve():
            try:
                bridge.serve(stop)
            except LinkClosed:
                pass
        threading.Thread(target=serve, daemon=True).start()
        yield bridge
    finally:
        stop.set()
        if link:
            link.close()
        if port:
            port.close()
        emulator.stop()
