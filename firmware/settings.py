"""Tunables: firmware version, default terminal id, link and screen timings. The pins
and baud rates of the board are in wiring.py."""

FIRMWARE_VERSION = "0.1.0"
TERMINAL_ID = "T0000001"  # overwritten per board by provisioning

# Link timing: a 519-byte frame (the largest) takes ~45 ms at 115200 baud; the bridge acknowledges
# from its reader thread, so 300 ms covers a busy PC. Six tries, then the message fails.
LINK_TIMEOUT_MS = 300
LINK_RETRIES = 5

HELLO_RETRY_MS = (1000, 2000, 5000, 10000)  # back-off while the bridge is away
STATUS_INTERVAL_MS = 30000                   # liveness check at the idle screen
POLL_MS = 5                                  # main loop pause when nothing happens

# Purchases. The merchant id and name come from the terminal's provisioning record
# (terminal.json); these are the values of a record that has none.
CURRENCY = 156             # ISO 4217 numeric of the amounts keyed: CNY, the demo accounts'
MAX_AMOUNT = 9999999       # minor units per purchase: 99,999.99
# Contactless purchases above this (minor units) ask for the online PIN; at or below it
# none. The terminal's record (terminal.json, cvm_limit) sets it; this is the value of a
# record without one: CNY 1,000.00, the issuer simulator's own limit.
CVM_LIMIT = 100000
MERCHANT_ID = "000000000000001"
MERCHANT_NAME = "POS TERMINAL"

# From sending a request until the board stops waiting for its answer: a purchase is
# then reversed. The bridge answers ERROR at once when the issuer is down, and the
# link gives up on a request the bridge never acknowledged after ~1.8 s, so this is
# only ever reached when an answer was lost or the issuer hangs.
ANSWER_TIMEOUT_MS = 15000
