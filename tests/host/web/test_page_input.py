"""The page's messages are held to a short list: anything else is refused with a reason,
whatever its shape (hypothesis draws the hostile ones)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from posbridge.web import page_input as pi

CARDS = range(1, 8)


@pytest.mark.parametrize("raw, command", [
    ('{"type": "key", "key": "7"}', pi.Key("7")),
    ('{"type": "key", "key": "E"}', pi.Key("E")),
    ('{"type": "swipe", "card": 3}', pi.Swipe(3)),
    ('{"type": "bad_swipe"}', pi.BadSwipe()),
    ('{"type": "faults", "slow": true}', pi.SetFaults(True, False, False)),
    ('{"type": "faults", "slow": false, "unavailable": true, "bad_mac": true}',
     pi.SetFaults(False, True, True)),
    ('{"type": "power_cut"}', pi.PowerCut()),
    (b'{"type": "ping", "n": 9}', pi.Ping(9)),
])
def test_the_commands(raw, command):
    assert pi.parse(raw, CARDS) == command


@pytest.mark.parametrize("raw, says", [
    ("", "not JSON"), ("{", "not JSON"), ("[1]", "not a JSON object"), (b"\xff", "UTF-8"),
    ('{"type": "key", "key": "A"}', "key"), ('{"type": "key", "key": "11"}', "key"),
    ('{"type": "key", "key": null}', "key"), ('{"type": "swipe", "card": 0}', "card"),
    ('{"type": "swipe", "card": 8}', "card"), ('{"type": "swipe", "card": true}', "card"),
    ('{"type": "swipe", "card": "1"}', "card"), ('{"type": "swipe", "card": 1.0}', "card"),
    ('{"type": "faults", "bad_mac": 1}', "faults"), ('{"type": "ping", "n": -1}', "ping"),
    ('{"type": "ping", "n": 2147483648}', "ping"), ('{"type": "shell"}', "type"),
    ("[" * 5000 + "]" * 5000, "over"), (json.dumps({"type": "key", "key": "1" * 600}), "over"),
    (None, "not text"),
])
def test_refusals_say_why(raw, says):
    with pytest.raises(pi.PageInputError, match=says):
        pi.parse(raw, CARDS)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                              lambda inner: st.lists(inner, max_size=4)
                              | st.dictionaries(st.sampled_from(["type", "key", "card", "n",
                                                                 "slow", "x"]), inner,
                                                max_size=4)).map(json.dumps)))
def test_anything_else_is_a_command_or_a_refusal(raw):
    try:
        command = pi.parse(raw, CARDS)
    except pi.PageInputError:
        return
    assert isinstance(command, (pi.Key, pi.Swipe, pi.BadSwipe, pi.SetFaults, pi.PowerCut,
                                pi.Ping))
