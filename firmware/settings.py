"""Tunables: firmware version, default terminal id, link and screen timings. The pins
and baud rates of the board are in wiring.py."""

FIRMWARE_VERSION = "0.1.0"
TERMINAL_ID = "T0000001"  # overwritten per board by provisioning

# Link timing: a 256-byte frame takes ~23 ms at 115200 baud; the bridge acknowledges
# from its reader thread, so 300 ms covers a busy PC. Six tries, then the message fails.
LINK_TIMEOUT_MS = 300
LINK_RETRIES = 5

HELLO_RETRY_MS = (1000, 2000, 5000, 10000)  # back-off while the bridge is away
STATUS_INTERVAL_MS = 30000                   # liveness check at the idle screen
POLL_MS = 5                                  # main loop pause when nothing happens
