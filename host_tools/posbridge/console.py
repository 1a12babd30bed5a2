"""What a person sees on the PC: screens drawn as boxes, frames as log lines,
card numbers masked in every line."""
import logging
import traceback

from rich.console import Console
from rich.logging import RichHandler
from rich.panel import Panel

from .link import protocol as p
from .link.pan import mask_pans_in_text

console = Console(highlight=False)
log = logging.getLogger("posbridge")


class MaskingFilter(logging.Filter):
    """Last line of defence: no log record leaves with a full card number in it."""

    def filter(self, record):
        text = record.getMessage()
        if record.exc_info:
            # the traceback is text too (an exception's message may hold a number);
            # the handler would render it from exc_info, past this filter
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            text += "\n" + record.stack_info
            record.stack_info = None
        record.msg = mask_pans_in_text(text)
        record.args = ()
        return True


def setup_logging(verbose: bool = False, quiet: bool = False):
    handler = RichHandler(console=console, show_path=False, markup=False)
    handler.addFilter(MaskingFilter())
    logging.basicConfig(level=logging.DEBUG if verbose else
                        logging.WARNING if quiet else logging.INFO,
                        format="%(message)s", datefmt="%H:%M:%S", handlers=[handler],
                        force=True)


def log_frame(direction: str, mtype: int, seq: int, body: bytes):
    arrow = "board -> bridge" if direction == "rx" else "bridge -> board"
    log.info("%s  seq=%-3d %s", arrow, seq, p.describe(mtype, body))


def print_screen(screen, title="display"):
    width = 16
    body = "\n".join(line.ljust(width) for line in (screen.lines + [""] * 8)[:8])
    heap = getattr(screen, "heap_free", 0)
    console.print(Panel(body, title=title, subtitle=f"heap {heap}" if heap else None,
                        expand=False, width=width + 4))
