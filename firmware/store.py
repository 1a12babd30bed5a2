"""Persistent state on flash: one small file per concern (JSON, or bytes where a record
is binary), replaced atomically.

write-to-temp-then-rename: os.rename over an existing file is atomic on LittleFS (the
ESP32 port's default) and on POSIX, so a power cut leaves the old file or the new one,
never half of one. Nothing written here may hold a PIN, a full PAN or track data."""
import json
import os


class StoreError(Exception):
    pass


class Store:
    def __init__(self, directory):
        self.directory = directory.rstrip("/")  # "" for the flash root

    def path(self, name):
        return self.directory + "/" + name + ".json"

    def load(self, name, default=None):
        """The saved dict, or default when there is none. A file that does not parse
        (it can only come from outside this module) is an error, not a silent reset:
        resetting a transaction counter would reuse DUKPT keys."""
        try:
            with open(self.path(name)) as f:
                data = f.read()
        except OSError:
            return default
        try:
            value = json.loads(data)
        except ValueError:
            raise StoreError("%s is corrupt" % self.path(name))
        if not isinstance(value, dict):
            raise StoreError("%s is not a record" % self.path(name))
        return value

    def save(self, name, value):
        self.write(name + ".json", json.dumps(value))

    def read(self, name, buf):
        """Fill `buf` from the file `name` (its whole name): the bytes read, 0 when there
        is none. Into the caller's buffer, so a binary record costs its own size only."""
        try:
            with open(self.directory + "/" + name, "rb") as f:
                return f.readinto(buf)
        except OSError:
            return 0

    def write(self, name, data):
        """Replace the file `name` (its whole name) with `data`, str or bytes."""
        final = self.directory + "/" + name
        temp = final + ".tmp"
        with open(temp, "w" if isinstance(data, str) else "wb") as f:
            f.write(data)
        os.rename(temp, final)
