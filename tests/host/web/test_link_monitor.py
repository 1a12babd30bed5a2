"""The link panel's entries: decoded by the schema's names, the PAN masked, the card's
track data left out, the PIN block as its length only."""
from posbridge.link import protocol as p
from posbridge.web.link_monitor import frame_event

PAN = "4761730000000011"


def _purchase_body():
    fields = p.build("purchase-request", terminal_id="T0000001", trace=7, time=1796079709,
                     card={p.KEYS["card"][n]: v for n, v in
                           (("pan", PAN), ("expiry", "3012"), ("service_code", "201"))},
                     pin_block=bytes(range(16)), ksn=bytes(12), amount=1250, currency=156,
                     merchant_id="104110070110001", merchant_name="DEMO SHOP")
    fields[p.mac_key(p.PURCHASE_REQUEST)] = bytes(8)
    return p.encode_body(fields)


def test_a_purchase_request_as_the_panel_shows_it():
    event = frame_event("rx", p.PURCHASE_REQUEST, 4, _purchase_body())
    assert event["name"] == "PURCHASE_REQUEST" and event["dir"] == "board>bridge"
    fields = event["fields"]
    assert fields["card"] == "card 476173******0011"
    assert fields["pin_block"] == "<16 bytes>"
    assert fields["amount"] == 1250
    text = str(event)
    assert PAN not in text and "3012" not in text and bytes(range(16)).hex() not in text


def test_an_undecodable_body_is_said_so_and_a_number_in_it_masked():
    event = frame_event("tx", p.ERROR, 1, b"\xff" + PAN.encode())
    assert event["problem"].startswith("undecodable")
    assert PAN not in str(event)


def test_a_number_in_free_text_is_masked():
    body = p.encode_body(p.build("error", code=1, text=f"card {PAN} refused", about_type=0x12))
    event = frame_event("tx", p.ERROR, 2, body)
    assert "476173******0011" in event["fields"]["text"]
    assert PAN not in str(event)
