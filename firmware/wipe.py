"""Overwriting a secret in place (PIN digits, keys, buffers that held track data): the
one loop every module that holds one uses. In place and without allocating, so no copy
of what it held is left behind in the heap."""


def wipe(buf):
    for i in range(len(buf)):
        buf[i] = 0
