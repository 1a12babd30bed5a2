"""The link's messages as the page shows them, decoded and masked as link/readable.py
does for every reader."""
import time

from ..link.readable import link_message


def frame_event(direction: str, mtype: int, seq: int, body: bytes) -> dict:
    """One entry of the link panel: "rx" is board -> bridge."""
    name, fields, problem = link_message(mtype, body)
    return {"type": "message", "dir": "board>bridge" if direction == "rx" else "bridge>board",
            "name": name, "seq": seq, "fields": fields, "problem": problem, "at": time.time()}
