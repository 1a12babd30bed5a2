"""Message types and body keys of the board-bridge protocol (docs/protocol.md,
docs/protocol.cddl). Bodies are deterministic CBOR maps with small integer keys."""

# message types (the link's own ACK is type 0, see link.py)
HELLO = 0x01           # board -> bridge, at boot
HELLO_REPLY = 0x02     # bridge -> board: the time and the bridge's version
STATUS_REQUEST = 0x03  # either way: are you there?
STATUS = 0x04          # the answer to STATUS_REQUEST
ERROR = 0x0F           # either way: a message could not be handled

# HELLO
K_PROTOCOL = 1
K_FIRMWARE = 2
K_TERMINAL_ID = 3

# HELLO_REPLY (K_PROTOCOL too)
K_TIME = 2             # unix seconds, UTC
K_BRIDGE = 3           # bridge software version
# key 4 (a UTC offset) is retired: the offset is the terminal's own setting

# STATUS
K_UPTIME = 1           # seconds
K_HEAP_FREE = 2        # bytes (board only)
K_STATE = 3            # text
K_LINK = 4             # map of link counters (board only)
K_ISSUER_ONLINE = 5    # bool (bridge only)
K_STATUS_TIME = 6      # unix seconds (bridge only): keeps the board's clock set

# link counters inside STATUS[K_LINK]
LINK_COUNTER_KEYS = (("tx", 1), ("rx", 2), ("retransmits", 3), ("duplicates", 4),
                     ("crc_errors", 5), ("framing_errors", 6), ("oversize", 7),
                     ("bad_header", 8), ("failures", 9), ("short_writes", 10))

# ERROR
K_ERROR_CODE = 1
K_ERROR_TEXT = 2
K_ERROR_TYPE = 3       # type of the message that failed
K_ERROR_TRACE = 4      # the trace number of the financial request it is about

ERR_UNSUPPORTED_TYPE = 1
ERR_MALFORMED = 2
ERR_PROTOCOL_VERSION = 3
ERR_INTERNAL = 4

# financial messages (docs/protocol.cddl)
BALANCE_REQUEST = 0x10
BALANCE_RESPONSE = 0x11
PURCHASE_REQUEST = 0x12
PURCHASE_RESPONSE = 0x13
REVERSAL_REQUEST = 0x14
REVERSAL_RESPONSE = 0x15

# balance and purchase requests of a contactless chip card (docs/protocol.md)
K_ENTRY_MODE = 18      # ISO 8583 field 22 positions 1-2: 7 contactless chip, 90 stripe
K_ICC = 19             # ICC data, BER-TLV (field 55)

MAC_LEN = 8  # AES-CMAC truncated to 8 bytes (NIST SP 800-38B allows 64 bits)

ERR_ISSUER_UNAVAILABLE = 5
ERR_SECURITY = 6
