"""Response codes (ISO 8583 field 39) and notification statuses, as data: the issuer,
the CLI and docs/issuer.md all read them from here."""

APPROVED = "00"
INVALID_AMOUNT = "13"          # purchases: not in the account's currency
INVALID_CARD = "14"
INSUFFICIENT_FUNDS = "51"      # purchases
EXPIRED_CARD = "54"
INCORRECT_PIN = "55"
FORMAT_ERROR = "30"            # contactless: ICC data malformed, incomplete or not this
                               # request's, or entry mode and ICC data that disagree
EXCEEDS_LIMIT = "61"           # purchases: over the card's or account's single-purchase limit
RESTRICTED_CARD = "62"
SECURITY_VIOLATION = "63"      # the request's MAC is wrong (its key set is known)
TIME_OUT_OF_WINDOW = "68"      # balance inquiries and purchases: the request's time is
                               # too old, or too far ahead, by the issuer's clock
PIN_TRIES_EXCEEDED = "75"
CRYPTOGRAM_FAILURE = "82"      # contactless: the card's ARQC is wrong or its ATC did not
                               # move forward (the code Visa uses for a negative online
                               # cryptogram check)
ISSUER_UNAVAILABLE = "91"      # never MAC'd by the issuer: see errors.py
DUPLICATE = "94"
SYSTEM_MALFUNCTION = "96"

RESPONSE_CODES = {
    APPROVED: "approved",
    INVALID_AMOUNT: "invalid amount",
    INVALID_CARD: "invalid card number",
    FORMAT_ERROR: "format error (ICC data)",
    INSUFFICIENT_FUNDS: "insufficient funds",
    EXPIRED_CARD: "expired card",
    INCORRECT_PIN: "incorrect PIN",
    EXCEEDS_LIMIT: "exceeds amount limit",
    RESTRICTED_CARD: "restricted card",
    SECURITY_VIOLATION: "security violation (request MAC)",
    TIME_OUT_OF_WINDOW: "request time out of window",
    PIN_TRIES_EXCEEDED: "PIN tries exceeded",
    CRYPTOGRAM_FAILURE: "cryptogram check failed (ARQC or ATC)",
    ISSUER_UNAVAILABLE: "issuer unavailable",
    DUPLICATE: "duplicate transmission",
    SYSTEM_MALFUNCTION: "system malfunction",
}

# notify-status of docs/protocol.cddl
QUEUED = 1
SENT = 2
NOT_SUBSCRIBED = 3
KIND_NOT_CHOSEN = 4
BELOW_THRESHOLD = 5            # purchases: detail (key 4) = the threshold
BANK_DOES_NOT_ALERT = 6
NO_PHONE = 7
QUIET_HOURS = 8
GATEWAY_FAILED = 9
NOTHING_TO_ALERT = 10
SECURITY_ALERT = 11

NOTIFY_STATUSES = {
    QUEUED: "queued",
    SENT: "sent",
    NOT_SUBSCRIBED: "not subscribed",
    KIND_NOT_CHOSEN: "kind not chosen",
    BELOW_THRESHOLD: "below threshold",
    BANK_DOES_NOT_ALERT: "bank does not alert this kind",
    NO_PHONE: "no phone on file",
    QUIET_HOURS: "held for quiet hours",
    GATEWAY_FAILED: "gateway failed",
    NOTHING_TO_ALERT: "nothing to alert",
    SECURITY_ALERT: "security alert sent",
}

# reversal-response key 16 (docs/protocol.cddl `reversal-outcome`); every one of them
# comes with response code 00: the reversal is acknowledged
REVERSED = 1                   # the purchase was charged: credited back now
NOTHING_CHARGED = 2            # original not found (recorded: it is declined if it comes
                               # later) or declined: nothing to credit
ALREADY_REVERSED = 3           # an earlier reversal credited it: nothing more

REVERSAL_OUTCOMES = {
    REVERSED: "reversed",
    NOTHING_CHARGED: "nothing charged (original not found or declined)",
    ALREADY_REVERSED: "already reversed",
}

# reversal-request key 14, why the terminal reverses
REVERSAL_REASONS = {
    1: "no answer in time",
    2: "answer failed verification",
    3: "power cut recovery",
    4: "an ERROR instead of an answer",
}

# alert kinds a cardholder can choose and a bank can switch off (notify.py has them as
# constants); security alerts are neither: they go out whatever was chosen
ALERT_KINDS = ("purchase", "balance_inquiry", "wrong_pin", "large_amount",
               "account_change", "repayment_reminder")
SECURITY_KINDS = ("pin_tries_exceeded", "frozen_card", "cryptogram_failure")
# a purchase cancelled and credited back: the bank can switch it off, the cardholder
# does not choose it; it follows the purchase's own alert (notify.py)
REVERSAL_KIND = "reversal"
# the kinds a bank's policy can switch on or off
POLICY_KINDS = ALERT_KINDS + (REVERSAL_KIND,)
# an outbox row: waiting for the dispatcher, waiting for quiet hours to end, claimed by
# one sender (the issuer after COMMIT, or a dispatcher) while it is handed to the
# gateway, handed to the gateway, or refused by it (retried later, with the reason kept)
OUTBOX_STATUSES = ("queued", "held", "sending", "sent", "failed")
DEFAULT_ALERT_KINDS = ("balance_inquiry", "purchase", "wrong_pin")
CHANNELS = ("sms", "app")
CARD_STATUSES = ("active", "frozen", "blocked")
