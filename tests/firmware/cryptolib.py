"""Test-only stand-in for MicroPython's built-in `cryptolib`, so firmware modules that
`import cryptolib` run unchanged under CPython (tests/firmware is on sys.path there).

Under MicroPython this file would shadow the built-in: the unix port (1.2x) searches
MICROPYPATH before its *extensible* built-in modules, and `cryptolib` is one of them
(checked: `import cryptolib` loads a cryptolib.py found on MICROPYPATH). So under
MicroPython this module hands over to the built-in with the documented way of extending
a built-in module from Python: empty sys.path for the duration of the import, so the
import can only resolve to the built-in. The firmware tests under MicroPython therefore
run on the real cryptolib; test_cmac.test_cryptolib_is_the_builtin_under_micropython
checks it. On the board nothing of tests/ is deployed.

Under CPython: AES-ECB only (mode 1, MODE_ECB), with the `cryptography` package, and the
same object rules as the built-in: `encrypt(in[, out])`/`decrypt(in[, out])` on 16-byte
multiples (with `out` given, the result is written there and `out` returned), and one
object cannot be used for both directions.
"""
import sys

MODE_ECB = 1

if sys.implementation.name == "micropython":
    _saved_path = sys.path
    sys.path = []
    try:
        from cryptolib import aes  # noqa: F401  (the built-in, see above)
    finally:
        sys.path = _saved_path
    del _saved_path
else:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    class aes:  # noqa: N801  (the built-in's name)
        """cryptolib.aes(key, 1): AES-ECB with a 16, 24 or 32-byte key."""

        def __init__(self, key, mode, iv=None):
            if mode != MODE_ECB:
                raise ValueError("test shim: only AES-ECB (mode 1) is provided")
            if len(key) not in (16, 24, 32):
                raise ValueError("key")
            self._cipher = Cipher(algorithms.AES(bytes(key)), modes.ECB())
            self._direction = None

        def _run(self, direction, data, out):
            if self._direction is None:
                self._direction = direction
            elif self._direction != direction:
                raise ValueError("can't encrypt & decrypt")  # as the built-in
            if len(data) % 16:
                raise ValueError("blksize % 16")
            ctx = self._cipher.encryptor() if direction == "e" else self._cipher.decryptor()
            result = ctx.update(bytes(data)) + ctx.finalize()
            if out is None:
                return result
            out[:len(result)] = result
            return out

        def encrypt(self, data, out=None):
            return self._run("e", data, out)

        def decrypt(self, data, out=None):
            return self._run("d", data, out)
