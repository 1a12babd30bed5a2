"""The terminals driven side by side, each in a closed loop (a purchase, its answer
checked, the next purchase), for a time or a count, with the figures of the run.

A purchase whose answer does not come or fails the board's checks is reversed, as the
board reverses it (reason 1 no answer, 2 answer refused); a reversal that gets no
answer is kept and sent again at the end, as the board keeps it on its flash. Then the
ledger is audited (audit.py): every purchase a terminal saw approved is charged once,
and nothing else is charged.
"""
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from ..link.protocol import PURCHASE_REQUEST, REVERSAL_REQUEST
from .targets import TargetError
from .terminal import AnswerRefused

APPROVED = "00"
# how often a kept reversal is sent again at the end before the run gives up on it
REVERSAL_TRIES = 5


@dataclass
class Figures:
    terminals: int = 0
    elapsed_s: float = 0.0
    sent: int = 0                # purchases sent
    outcomes: Counter = field(default_factory=Counter)    # response code -> count
    errors: Counter = field(default_factory=Counter)      # failure kind -> count
    latencies_ms: list = field(default_factory=list)      # answered purchases
    reversals: int = 0
    reversals_unsent: int = 0
    approved: dict = field(default_factory=dict)          # (terminal id, trace) -> amount
    conflicts: "int | None" = None   # transactions run again (in-process issuer only)

    @property
    def answered(self) -> int:
        return sum(self.outcomes.values())

    @property
    def rate(self) -> float:
        """Authorisations (answered purchases) a second."""
        return self.answered / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values, p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


class LoadRun:
    """One run of `fleet` against `target`: run() blocks until it is over; snapshot()
    may be called meanwhile from another thread (the live view)."""

    def __init__(self, fleet, target, *, duration_s: "float | None" = None,
                 count: "int | None" = None, amounts=(100, 5000), seed=None,
                 clock=time.perf_counter, wall=time.time):
        if (duration_s is None) == (count is None):
            raise ValueError("a run lasts a duration or a count of purchases, not both")
        self.fleet = fleet
        self.target = target
        self.duration_s = duration_s
        self.count = count
        self.amounts = amounts
        self._rng = random.Random(seed)
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._figures = Figures(terminals=len(fleet))
        self._started = None
        self._budget = count
        self._kept = []           # reversals that got no answer: (terminal, pending)

    def _take(self) -> bool:
        """Whether one more purchase is to be sent."""
        with self._lock:
            if self._budget is not None:
                if self._budget <= 0:
                    return False
                self._budget -= 1
                return True
        return self._clock() - self._started < self.duration_s

    def run(self) -> Figures:
        self._started = self._clock()
        threads = [threading.Thread(target=self._terminal_loop,
                                    args=(t, self.target.for_terminal(i)), daemon=True,
                                    name=f"load-{t.terminal_id}")
                   for i, t in enumerate(self.fleet)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        figures = self._figures
        figures.elapsed_s = self._clock() - self._started
        self._send_kept_reversals()
        return figures

    def snapshot(self) -> "tuple[Figures, float]":
        """The figures so far (a copy of the counters) and the time since the start."""
        with self._lock:
            f = self._figures
            copy = Figures(f.terminals, 0.0, f.sent, Counter(f.outcomes), Counter(f.errors),
                           list(f.latencies_ms[-5000:]), f.reversals, f.reversals_unsent)
        elapsed = self._clock() - self._started if self._started else 0.0
        copy.elapsed_s = elapsed
        return copy, elapsed

    def _terminal_loop(self, terminal, target):
        low, high = self.amounts
        rng = random.Random(self._rng.random())
        while self._take():
            pending = terminal.purchase(rng.randint(low, high), int(self._wall()))
            start = self._clock()
            try:
                body = target.send(PURCHASE_REQUEST, pending.body)
                fields = terminal.check(body, pending)
            except TargetError as exc:
                self._failed(terminal, target, pending, exc.kind, reason=1)
                continue
            except AnswerRefused as exc:
                self._failed(terminal, target, pending, f"answer refused: {exc}", reason=2)
                continue
            latency_ms = (self._clock() - start) * 1000
            code = fields["response_code"]
            with self._lock:
                f = self._figures
                f.sent += 1
                f.outcomes[code] += 1
                f.latencies_ms.append(latency_ms)
                if code == APPROVED:
                    f.approved[(terminal.terminal_id, pending.trace)] = pending.amount

    def _failed(self, terminal, target, pending, kind, reason):
        with self._lock:
            self._figures.sent += 1
            self._figures.errors[kind] += 1
        reversal = terminal.reversal(pending, reason, int(self._wall()))
        if not self._reverse(terminal, target, reversal):
            with self._lock:
                self._kept.append((terminal, reversal))

    def _reverse(self, terminal, target, reversal) -> bool:
        try:
            fields = terminal.check(target.send(REVERSAL_REQUEST, reversal.body), reversal)
        except (TargetError, AnswerRefused):
            return False
        with self._lock:
            self._figures.reversals += 1
        return fields["response_code"] == APPROVED

    def _send_kept_reversals(self):
        for terminal, reversal in self._kept:
            target = self.target.for_terminal(self.fleet.index(terminal))
            if not any(self._reverse(terminal, target, reversal)
                       for _ in range(REVERSAL_TRIES)):
                self._figures.reversals_unsent += 1
