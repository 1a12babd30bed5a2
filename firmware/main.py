"""ESP32 entry point: wires the drivers to the board's UARTs and I2C (pins in wiring.py)."""
import micropython
import time
from machine import I2C, Pin, UART

import wiring as w
from app import Terminal
from ssd1306 import SSD1306
from store import Store


def main():
    # The host link is UART0, the REPL's port: it carries binary frames, so a 0x03
    # byte must not raise KeyboardInterrupt, and nothing may print from here on.
    micropython.kbd_intr(-1)
    link = UART(w.LINK_UART, baudrate=w.LINK_BAUD, tx=w.LINK_TX,
                rx=w.LINK_RX, timeout=0, rxbuf=1024)
    i2c = I2C(w.I2C_ID, scl=Pin(w.I2C_SCL), sda=Pin(w.I2C_SDA),
              freq=w.I2C_FREQ)
    panel = SSD1306(i2c, w.DISPLAY_ADDR)
    card = UART(w.CARD_UART, baudrate=w.CARD_BAUD, tx=w.CARD_TX,
                rx=w.CARD_RX, timeout=0)
    pinpad = UART(w.PINPAD_UART, baudrate=w.PINPAD_BAUD, tx=w.PINPAD_TX,
                  rx=w.PINPAD_RX, timeout=0)
    # state records (terminal.json from provisioning, counters.json) on the flash root
    Terminal(link, panel, clock=time.ticks_ms, card_stream=card, pinpad_stream=pinpad,
             store=Store("")).run()


main()
