"""Board wiring and tunables: the one place pins, baud rates and timings are set.
Values for an ESP32-DevKitC (ESP32-WROOM-32)."""

FIRMWARE_VERSION = "0.1.0"
TERMINAL_ID = "T0000001"  # overwritten per board by provisioning

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

# Link timing: a 256-byte frame takes ~23 ms at 115200 baud; the bridge acknowledges
# from its reader thread, so 300 ms covers a busy PC. Six tries, then the message fails.
LINK_TIMEOUT_MS = 300
LINK_RETRIES = 5

HELLO_RETRY_MS = (1000, 2000, 5000, 10000)  # back-off while the bridge is away
STATUS_INTERVAL_MS = 30000                   # liveness check at the idle screen
POLL_MS = 5                                  # main loop pause when nothing happens
