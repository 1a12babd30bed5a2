# The standard's public test vectors (../shared/reference/aes-dukpt-x9.24-3.json relative
# to the repository root), for tests under CPython and MicroPython alike.
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
