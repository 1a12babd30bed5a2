"""An issuer in a process of its own, for the tests of issuers side by side on one
database: it opens the database, waits for the others at the barrier, answers its
requests in order and puts (index, answer or the exception's name) on the queue. Only
posbridge is imported here: a spawned process imports this module afresh."""
from posbridge.issuer import Issuer, IssuerError, Ledger


def answer_all(location, keys, now, requests, barrier, results):
    issuer = Issuer(Ledger.open(location, keys), clock=lambda: now)
    try:
        barrier.wait(60)
        out = []
        for mtype, body in requests:
            try:
                out.append(issuer.handle(mtype, body))
            except IssuerError as exc:
                out.append(type(exc).__name__)
        results.put(out)
    finally:
        issuer.close()
