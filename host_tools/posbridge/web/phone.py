"""The cardholder's phone: the alerts of the card in use as they leave the issuer's
outbox (status "sent"), each in the language the issuer wrote it in, the cardholder's.
An alert still waiting there (held for the cardholder's quiet hours, queued, failed) is
listed apart as waiting: `posbridge issuer dispatch` sends those, not the console.

It reads the outbox through a connection of its own to the issuer's database, so that
it never shares a connection (and a transaction) with the issuer's thread; it writes
nothing. Only rows added after the console started are shown: the phone is a fresh one
beside this terminal, not the history of a database given with --issuer-db."""
from typing import Optional

from ..issuer.ledger import Ledger


class Phone:
    def __init__(self, issuer):
        self._ledger = Ledger.open(issuer.ledger.path, keys=issuer.keys)
        rows = self._ledger.outbox()
        self._first_id = rows[-1]["id"] + 1 if rows else 0
        self.last4: Optional[str] = None       # the card in use, by its last four digits
        self.owner: dict = {}                  # who holds it, as the page shows them
        self._shown: list[int] = []

    def close(self):
        self._ledger.close()

    def use_card(self, last4: str, owner: dict):
        self.last4 = last4
        self.owner = owner
        self._shown = []

    def alerts(self) -> list[dict]:
        """The alerts of the card in use, oldest first: sent, or waiting in the outbox."""
        if self.last4 is None:
            return []
        out = []
        for row in self._ledger.outbox():
            if row["id"] < self._first_id or row["card_last4"] != self.last4:
                continue
            # destination is masked in the outbox (138****5678): the full number never
            # leaves the gateway
            out.append({"id": row["id"], "kind": row["kind"], "channel": row["channel"],
                        "to": row["destination"], "language": row["language"],
                        "text": row["text"], "status": row["status"],
                        "sent_at": row["sent_at"], "next_attempt_at": row["next_attempt_at"]})
        return out

    def news(self) -> Optional[dict]:
        """The phone's event for the page when the list changed since last asked, else None."""
        alerts = self.alerts()
        shown = [(a["id"], a["status"]) for a in alerts]
        if shown == self._shown:
            return None
        self._shown = shown
        return self.snapshot(alerts)

    def snapshot(self, alerts: Optional[list] = None) -> dict:
        return {"type": "phone", "card": self.owner, "alerts":
                self.alerts() if alerts is None else alerts}
