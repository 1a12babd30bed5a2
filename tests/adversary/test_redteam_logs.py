"""Log injection: a request's terminal id is named in the issuer's log before its MAC
is checked (that is what a refusal's log line is for), so a man in the middle on the
serial link, or a hostile board, could put a line break or a terminal escape there and
write lines the issuer never wrote. The issuer takes a printable terminal id only."""
import logging

import pytest

from posbridge.issuer.errors import IssuerRequestError
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST

from tests.host.issuer.conftest import db_path, demo_template, make_issuer, sleeps  # noqa: F401
from tests.host.issuer.request_builder import TerminalRequestBuilder

LI_WEI = "4761730000000011"


@pytest.fixture
def issuer(make_issuer):
    return make_issuer()


@pytest.mark.parametrize("terminal_id", ["T1\nINFO ok", "\x1b[2JT1", "T1\r", "T\u2028X"])
def test_a_terminal_id_with_control_characters_is_malformed_and_not_logged(
        issuer, caplog, terminal_id):
    forger = TerminalRequestBuilder(terminal_id=terminal_id)
    with caplog.at_level(logging.DEBUG):
        for mtype, (body, _) in ((BALANCE_REQUEST, forger.request(LI_WEI)),
                                 (PURCHASE_REQUEST, forger.purchase(LI_WEI, 100))):
            with pytest.raises(IssuerRequestError) as refused:
                issuer.handle(mtype, body)
            assert all(c.isprintable() for c in str(refused.value))
    for record in caplog.records:
        assert all(c.isprintable() for c in record.getMessage()), record.getMessage()


def test_a_printable_terminal_id_of_another_script_is_still_taken_to_its_check(issuer):
    """Only control characters are refused here: a printable id goes on to the
    registry, which refuses one it does not know as a security matter, as before."""
    from posbridge.issuer.errors import IssuerSecurityError
    body, _ = TerminalRequestBuilder(terminal_id="终端1").request(LI_WEI)
    with pytest.raises(IssuerSecurityError):
        issuer.handle(BALANCE_REQUEST, body)
