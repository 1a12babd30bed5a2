"""The ledger read at the end of a run: what the terminals saw against what was charged.

    double   a purchase debited more than once, or credited back more than once
    lost     a purchase the terminal saw approved that is not charged (exactly its
             amount, not reversed)
    unseen   a purchase charged that no terminal saw approved (its answer lost, and not
             reversed)
The three must be 0. The balances must add up too: each card's account is its opening
balance less what its purchases left charged.
"""
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Audit:
    purchases: int = 0           # purchase rows journaled for the fleet
    charged: int = 0             # purchases debited and not credited back
    charged_amount: int = 0
    double: int = 0
    lost: int = 0
    unseen: int = 0
    balance_errors: int = 0
    problems: list = field(default_factory=list)    # the first few, for a person

    @property
    def ok(self) -> bool:
        return not (self.double or self.lost or self.unseen or self.balance_errors)


_ROWS = """
    SELECT t.terminal_id, t.trace_number, t.kind, t.response_code, t.original_trace,
           t.amount, count(e.id) AS entries, coalesce(sum(e.amount), 0) AS posted
    FROM transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
    WHERE substr(t.terminal_id, 1, 4) = ?
    GROUP BY t.id, t.terminal_id, t.trace_number, t.kind, t.response_code,
             t.original_trace, t.amount"""


def audit(ledger, fleet, approved: "dict[tuple[str, int], int]", opening: int) -> Audit:
    """`approved`: (terminal id, trace) -> amount, each purchase the terminal saw
    approved (its answer passed the checks). The fleet's terminal ids share their
    first four characters (fleet.py)."""
    result = Audit()
    prefix = fleet[0].terminal_id[:4]
    debits = defaultdict(list)           # (terminal, trace) -> [debited, ...]
    credits = defaultdict(list)          # (terminal, original trace) -> [credited, ...]
    for row in ledger.execute(_ROWS, (prefix,)):
        key = (row["terminal_id"], row["trace_number"])
        if row["kind"] == "purchase":
            result.purchases += 1
            if row["entries"] > 1:
                result.double += 1
                result.problems.append(f"purchase {key} posted {row['entries']} times")
            if row["entries"]:
                debits[key].append(-row["posted"])
        elif row["kind"] == "reversal" and row["entries"]:
            credits[(row["terminal_id"], row["original_trace"])].append(row["posted"])
    for key, debited in debits.items():
        if len(debited) > 1:
            result.double += 1
            result.problems.append(f"purchase {key} debited by {len(debited)} rows")
        credited = credits.get(key, [])
        if len(credited) > 1:
            result.double += 1
            result.problems.append(f"purchase {key} credited back {len(credited)} times")
        net = sum(debited) - sum(credited)
        if net:
            result.charged += 1
            result.charged_amount += net
            if key not in approved:
                result.unseen += 1
                result.problems.append(f"purchase {key} charged, never seen approved")
    for key, amount in approved.items():
        net = sum(debits.get(key, [])) - sum(credits.get(key, []))
        if net != amount:
            result.lost += 1
            result.problems.append(f"purchase {key} approved for {amount}, charged {net}")
    pans = {terminal.terminal_id: terminal.card.pan for terminal in fleet}
    spent = dict.fromkeys(pans.values(), 0)
    for (terminal_id, _), amount in approved.items():
        spent[pans[terminal_id]] += amount
    for pan, amount in spent.items():
        card = ledger.card_by_pan(pan)
        if card is None or card.available != opening - amount or card.ledger != card.available:
            result.balance_errors += 1
            result.problems.append(f"card ****{pan[-4:]}: balance does not add up")
    return result

