"""ESP32-S3 entry point: wires the drivers to the board's USB, UARTs and I2C (pins and
the reasons in wiring.py)."""
import micropython
import select
import sys
import time
from machine import I2C, Pin, UART

import wiring as w
from app import Terminal
from ssd1306 import SSD1306
from store import Store


class UsbLink:
    """The host link on the native USB port (MicroPython's stdin and stdout), behind the
    stream seam of a UART(timeout=0): readinto() takes what has arrived, never waits."""

    def __init__(self):
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)
        self.byte = bytearray(1)

    def readinto(self, buf):
        n = 0
        while n < len(buf) and self.poller.poll(0):
            if not sys.stdin.buffer.readinto(self.byte):
                break
            buf[n] = self.byte[0]
            n += 1
        return n or None

    def write(self, data):
        return sys.stdout.buffer.write(data)


def main():
    # The host link is the REPL's port: it carries binary frames, so a 0x03 byte must
    # not raise KeyboardInterrupt, and nothing may print from here on.
    micropython.kbd_intr(-1)
    i2c = I2C(w.I2C_ID, scl=Pin(w.I2C_SCL), sda=Pin(w.I2C_SDA), freq=w.I2C_FREQ)
    panel = SSD1306(i2c, w.DISPLAY_ADDR)
    card = UART(w.CARD_UART, baudrate=w.CARD_BAUD, tx=w.CARD_TX, rx=w.CARD_RX, timeout=0)
    pinpad = UART(w.PINPAD_UART, baudrate=w.PINPAD_BAUD, tx=w.PINPAD_TX,
                  rx=w.PINPAD_RX, timeout=0)
    nfc = UART(w.NFC_UART, baudrate=w.NFC_BAUD, tx=w.NFC_TX, rx=w.NFC_RX, timeout=0,
               rxbuf=512)   # an APDU's answer in an extended frame is up to 274 bytes
    # state records (terminal.json from provisioning, counters.json) on the flash root
    Terminal(UsbLink(), panel, clock=time.ticks_ms, card_stream=card, pinpad_stream=pinpad,
             store=Store(""), nfc_stream=nfc).run()


main()
