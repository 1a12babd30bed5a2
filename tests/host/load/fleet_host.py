"""The ISO 8583 host the load tests run their fleet against."""
import contextlib

from posbridge.issuer import Issuer, Ledger, Policy
from posbridge.load import fleet as fleet_module

from tests.iso8583_net import RunningHost


@contextlib.contextmanager
def fleet_host(location, keys):
    """`posbridge issuer serve` in this process on the database at `location`, the
    fleet's test key set in its key store first; yields the host's iso8583:// URL."""
    ledger = Ledger.open(location, keys)
    fleet_module.provision(ledger, 1)     # the test key set in the key store, before the host
    ledger.close()
    issuer = Issuer(Ledger.open(location, keys), Policy())
    host = RunningHost(issuer)
    try:
        yield f"iso8583://127.0.0.1:{host.port}"
    finally:
        host.close()
        issuer.close()
