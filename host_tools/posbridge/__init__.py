"""PC side of the POS terminal: serial bridge, board emulator, tools."""

__version__ = "0.1.0"
