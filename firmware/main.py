"""ESP32 entry point: wires the drivers to the board's UARTs and I2C (pins in settings)."""
import micropython
import time
from machine import I2C, Pin, UART

import settings
from app import Terminal
from ssd1306 import SSD1306
from store import Store


def main():
    # The host link is UART0, the REPL's port: it carries binary frames, so a 0x03
    # byte must not raise KeyboardInterrupt, and nothing may print from here on.
    micropython.kbd_intr(-1)
    link = UART(settings.LINK_UART, baudrate=settings.LINK_BAUD, tx=settings.LINK_TX,
                rx=settings.LINK_RX, timeout=0, rxbuf=1024)
    i2c = I2C(settings.I2C_ID, scl=Pin(settings.I2C_SCL), sda=Pin(settings.I2C_SDA),
              freq=settings.I2C_FREQ)
    panel = SSD1306(i2c, settings.DISPLAY_ADDR)
    card = UART(settings.CARD_UART, baudrate=settings.CARD_BAUD, tx=settings.CARD_TX,
                rx=settings.CARD_RX, timeout=0)
    pinpad = UART(settings.PINPAD_UART, baudrate=settings.PINPAD_BAUD, tx=settings.PINPAD_TX,
                  rx=settings.PINPAD_RX, timeout=0)
    # state records (terminal.json from provisioning, counters.json) on the flash root
    Terminal(link, panel, clock=time.ticks_ms, card_stream=card, pinpad_stream=pinpad,
             store=Store("")).run()


main()
