# The standard's public test vectors (../shared/reference/aes-dukpt-x9.24-3.json relative
# to the repository root), for tests under CPython and MicroPython alike: every test that
# needs them loads them here. Where each part of the file comes from:
# - "bdk", "initial_key_id", "initial_key" and "transactions" (for counters 1 to 3: the
#   transaction key and the PIN encryption, MAC generation and data encryption keys): the
#   test vector supplement to ANSI X9.24-3-2017 (x9.org, "X9.24 Part 3 - Test Vectors"),
#   the AES-128 BDK set;
# - "iso9564_format4_example": an ISO 9564-1:2017 format 4 PIN block (clause 9.4.2),
#   PIN 1234 and PAN 4111111111111111 under the PIN encryption key of counter 1, worked
#   in the same supplement, with its random fill fixed.
#
# Found by walking up from this file's directory and trying <dir>/shared/reference/ at
# each level: it does not depend on the working directory, and MicroPython sets __file__
# too (relative when the module was found through a relative path, hence the getcwd()).
import json
import os

NAME = "aes-dukpt-x9.24-3.json"


def _parent(path):
    cut = path.rstrip("/").rfind("/")
    return path[:cut] if cut > 0 else "/"


def reference_path():
    here = __file__
    if not here.startswith("/"):
        here = os.getcwd().rstrip("/") + "/" + here
    d = _parent(here)
    while True:
        candidate = d.rstrip("/") + "/shared/reference/" + NAME
        try:
            os.stat(candidate)
            return candidate
        except OSError:
            pass
        if d == "/":
            raise OSError("reference vectors %s not found above %s" % (NAME, here))
        d = _parent(d)


def load():
    with open(reference_path()) as f:
        return json.load(f)


def unhex(text):
    return bytes.fromhex(text)
