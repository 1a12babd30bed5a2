"""Board wiring: the pins and UARTs of an ESP32-S3-DevKitC-1 (docs/peripherals.md,
"Wiring"). Only main.py imports this, so the emulator and the tests never hold these
names in RAM.

Four serial devices and the ESP32's three UARTs: the classic ESP32 gives UART0 to its
USB-serial bridge chip (the host link and the REPL), UART1 to the stripe reader and
UART2 to the PIN pad, and has none left for the PN532. The ESP32-S3 carries the host
link on its native USB (MicroPython's stdin/stdout), which frees UART0. The MicroPython
image must be built without the UART REPL (ESP32_GENERIC_S3 with
MICROPY_HW_ENABLE_UART_REPL 0), else the REPL keeps UART0's receive side."""

# Card reader and PIN pad: they only send; the TX pins are set, never driven.
CARD_UART = 1
CARD_BAUD = 9600
CARD_TX = 17
CARD_RX = 18
PINPAD_UART = 2
PINPAD_BAUD = 9600
PINPAD_TX = 15
PINPAD_RX = 16

# PN532 contactless reader on its HSU (high-speed UART), at its default 115200 baud:
# board TX -> PN532 RXD, board RX <- PN532 TXD. Away from the strapping pins (0, 3, 45,
# 46), the USB pins (19, 20) and GPIO 43/44 (the DevKitC-1's USB-UART bridge, where the
# boot ROM prints at reset).
NFC_UART = 0
NFC_BAUD = 115200
NFC_TX = 4
NFC_RX = 5

# SSD1306 128x64 on I2C0, the ESP32_GENERIC_S3 board's default I2C pins
I2C_ID = 0
I2C_SCL = 9
I2C_SDA = 8
I2C_FREQ = 400000
DISPLAY_ADDR = 0x3C
