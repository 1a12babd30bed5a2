"""Board wiring: the pins and UARTs of an ESP32-DevKitC (ESP32-WROOM-32). Only main.py
imports this, so the emulator and the tests never hold these names in RAM."""

# Host link: UART0 is the USB-serial bridge chip on the DevKitC (also the REPL's
# port, so main.py turns off Ctrl-C and prints nothing once the link is up).
LINK_UART = 0
LINK_BAUD = 115200
LINK_TX = 1
LINK_RX = 3

# Card reader and PIN pad: UART1/UART2 moved off the flash pins (GPIO 6-11).
CARD_UART = 1
CARD_BAUD = 9600
CARD_TX = 25
CARD_RX = 26
PINPAD_UART = 2
PINPAD_BAUD = 9600
PINPAD_TX = 17
PINPAD_RX = 16

# SSD1306 128x64 on I2C0
I2C_ID = 0
I2C_SCL = 22
I2C_SDA = 21
I2C_FREQ = 400000
DISPLAY_ADDR = 0x3C
