"""The virtual contactless card (board/emv_card.py) APDU by APDU: what a terminal reads
of it, the status words of a card for what it does not do, its faults, and its
cryptogram checked by pyemv's own CVN classes from the issuer master key."""
import pytest
from pyemv import cvn as pyemv_cvn
from pyemv import tlv

from posbridge.board.emv_card import PDOL, PPSE, PROFILES, EmvCard
from posbridge.issuer.keystore import KeyStore

from .emv_kernel import CardError, read_card, select

PAN = "4761730000000011"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    store = KeyStore.create(tmp_path_factory.mktemp("keys") / "issuer.keys")
    for card_range in ("476173", "541333", "622588"):
        store.create_issuer_master_keys(card_range)
    return store


def card(keys, profile="visa-18", pan=PAN, **kw):
    return EmvCard.personalise(keys, pan, expiry="3012", profile=profile, psn="01", **kw)


def ok(response):
    assert response[-2:] == b"\x90\x00", response[-2:].hex()
    return tlv.decode(response[:-2])


def test_ppse_lists_the_application_with_its_priority(keys):
    c = card(keys)
    fci = ok(c.apdu(select(PPSE)))["6F"]
    assert fci["84"] == PPSE
    entry = fci["A5"]["BF0C"]["61"]
    assert entry == {"4F": bytes.fromhex("A0000000031010"), "50": b"VISA CREDIT",
                     "87": b"\x01"}


def test_select_aid_gives_the_pdol(keys):
    c = card(keys)
    fci = ok(c.apdu(select(bytes.fromhex("A0000000031010"))))["6F"]
    assert fci["84"] == bytes.fromhex("A0000000031010")
    pdol = fci["A5"]["9F38"]
    assert pdol.hex().upper() == "".join(f"{t}{n:02X}" for t, n in PDOL)
    # a partial AID selects it too (EMV Book 1 12.3.3)
    assert c.apdu(select(bytes.fromhex("A000000003")))[-2:] == b"\x90\x00"


def test_an_unknown_application_is_6a82(keys):
    c = card(keys)
    assert c.apdu(select(bytes.fromhex("A0000000041010"))) == b"\x6a\x82"
    assert c.apdu(select(b"1PAY.SYS.DDF01")) == b"\x6a\x82"


def test_gpo_before_select_and_with_a_wrong_length(keys):
    c = card(keys)
    assert c.apdu(bytes.fromhex("80A8000002830000")) == b"\x69\x85"
    c.apdu(select(bytes.fromhex("A0000000031010")))
    assert c.apdu(bytes.fromhex("80A8000002830000")) == b"\x67\x00"
    assert c.atc == 0                                # nothing counted


def test_gpo_format_2_and_the_records(keys):
    c = card(keys)
    read = read_card(c, 8800)
    gpo = read["values"]
    assert gpo["82"] == bytes.fromhex("2000") and gpo["94"] == bytes.fromhex("08010200")
    assert gpo["9F36"] == b"\x00\x01" and gpo["9F27"] == b"\x80" and len(gpo["9F26"]) == 8
    assert read["pan"] == read["track2_pan"] == PAN
    assert (read["expiry"], read["service_code"], read["psn"]) == ("3012", "201", "01")
    assert read_card(c, 100)["values"]["9F36"] == b"\x00\x02"    # the ATC goes up


def test_read_record_out_of_the_afl_and_unknown_commands(keys):
    c = card(keys)
    c.apdu(select(bytes.fromhex("A0000000031010")))
    assert c.apdu(bytes.fromhex("00B2030C00")) == b"\x6a\x83"
    assert c.apdu(bytes.fromhex("00B2011400")) == b"\x6a\x83"      # SFI 2
    assert c.apdu(bytes.fromhex("00CA9F1700")) == b"\x6d\x00"      # GET DATA: not here
    assert c.apdu(bytes.fromhex("A4A4040000")) == b"\x6e\x00"
    assert c.apdu(b"\x00\xa4") == b"\x67\x00"
    assert c.apdu(bytes.fromhex("00A404000E") + PPSE[:5]) == b"\x67\x00"  # Lc past the end


def test_a_mastercard_gives_its_cryptogram_at_generate_ac(keys):
    c = card(keys, profile="mastercard-16", pan="5413330000000019")
    assert c.apdu(bytes.fromhex("80AE8000") + bytes([29]) + bytes(29)) == b"\x69\x85"
    read = read_card(c, 500)
    assert c.apdus == 6 and read["values"]["9F36"] == b"\x00\x01"
    cdol1 = ok(c.apdu(bytes.fromhex("00B2010C00")))["70"]["8C"]
    assert cdol1.hex().upper() == "9F02069F03069F1A0295055F2A029A039C019F3704"
    c.apdu(select(bytes.fromhex("A0000000041010")))
    c.apdu(bytes.fromhex("80A80000") + bytes([35, 0x83, 33]) + bytes(33) + b"\x00")
    assert c.apdu(bytes.fromhex("80AE800003000000")) == b"\x67\x00"
    # a Visa card knows no GENERATE AC in its contactless flow
    assert card(keys).apdu(bytes.fromhex("80AE800003000000")) == b"\x6d\x00"


def test_a_card_without_ppse_answers_6a82(keys):
    c = card(keys, faults=("ppse_6a82",))
    assert c.apdu(select(PPSE)) == b"\x6a\x82"
    with pytest.raises(CardError, match="SELECT PPSE: 6A82"):
        read_card(c, 100)


@pytest.mark.parametrize("fault, error", [("truncated", "Tag value malformed"),
                                          ("deep_nesting", None)])
def test_malformed_fci(keys, fault, error):
    response = card(keys, faults=(fault,)).apdu(select(PPSE))
    assert response[-2:] == b"\x90\x00"
    if error:
        with pytest.raises(tlv.DecodeError, match=error):
            tlv.decode(response[:-2])
    else:
        depth, node = 0, tlv.decode(response[:-2])
        while isinstance(node, dict) and "A5" in node:
            depth, node = depth + 1, node["A5"]
        assert depth >= 50


def test_a_pdol_whose_lengths_overrun(keys):
    fci = ok(card(keys, faults=("bad_pdol_length",)).apdu(
        select(bytes.fromhex("A0000000031010"))))
    assert fci["6F"]["A5"]["9F38"][-1] == 0xFF


def test_unknown_profiles_and_faults_are_refused(keys):
    with pytest.raises(ValueError, match="card profile"):
        card(keys, profile="amex-01")
    with pytest.raises(ValueError, match="card fault"):
        card(keys, faults=("melted",))


@pytest.mark.parametrize("profile, pan, version", [
    ("visa-10", PAN, pyemv_cvn.VisaCVN10), ("visa-18", PAN, pyemv_cvn.VisaCVN18),
    ("unionpay-10", "6225880000000050", pyemv_cvn.VisaCVN10),
    ("mastercard-16", "5413330000000019", pyemv_cvn.MasterCardCVN16),
    ("mastercard-17", "5413330000000019", pyemv_cvn.MasterCardCVN17)])
def test_the_arqc_is_what_pyemv_computes_from_the_issuer_master_key(keys, profile, pan,
                                                                   version):
    c = card(keys, profile=profile, pan=pan)
    assert c.aid == bytes.fromhex(PROFILES[profile][0])
    v = read_card(c, 12345, unpredictable=b"\xde\xad\xbe\xef")["values"]
    imks = keys._imks_of(pan)
    reference = version(*imks, pan=pan, psn="01")
    assert reference.icc_mk_ac == c.icc_mk_ac
    common = dict(tag_9f02=v["9F02"], tag_9f03=v["9F03"], tag_9f1a=v["9F1A"],
                  tag_95=v["95"], tag_5f2a=v["5F2A"], tag_9a=v["9A"], tag_9c=v["9C"],
                  tag_9f37=v["9F37"], tag_82=v["82"], tag_9f36=v["9F36"])
    iad = v["9F10"]
    if profile == "visa-18":
        extra = dict(tag_9f10=iad)
    elif profile.startswith("mastercard"):
        extra = dict(cvr=iad[2:8])
        if profile == "mastercard-17":
            extra["counters"] = iad[10:18]
    else:
        extra = dict(cvr=iad[3:7])
    assert reference.generate_ac(**common, **extra) == v["9F26"]


def test_the_card_never_shows_its_keys():
    c = EmvCard("4761730000000011", "3012", "visa-18", bytes(16))
    assert "4761730000000011" not in repr(c) and "0011" in repr(c)
