"""The link's messages as the page shows them: decoded by the schema's names, with the
project's redaction (protocol.REDACT: the PAN masked, the card's other track data left
out, the PIN block as its length only), and anything left that looks like a card number
masked once more, as the log's last line of defence does."""
import json
import time

from ..link import protocol as p
from ..link.pan import mask_pans_in_text


def _plain(value):
    """A value JSON can carry: bytes in nested maps as hex, like named() does above them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def frame_event(direction: str, mtype: int, seq: int, body: bytes) -> dict:
    """One entry of the link panel: "rx" is board -> bridge."""
    name = p.TYPE_NAMES.get(mtype, f"TYPE_{mtype:#04x}")
    try:
        fields = _plain(p.named(mtype, p.decode_body(body)))
        problem = None
    except ValueError as exc:
        fields, problem = {}, f"undecodable ({len(body)} bytes): {exc}"
    # the whole entry through the masking pass: a number in free text (an ERROR's
    # text, a field the schema does not know) is masked too
    text = mask_pans_in_text(json.dumps(fields, ensure_ascii=False))
    return {"type": "message", "dir": "board>bridge" if direction == "rx" else "bridge>board",
            "name": name, "seq": seq, "fields": json.loads(text),
            "problem": mask_pans_in_text(problem) if problem else None, "at": time.time()}
