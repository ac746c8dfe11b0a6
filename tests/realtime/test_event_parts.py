"""``inbound.event_parts``: an EVENT packet in its common form read as python-socketio reads it, or
left to python-socketio (``Server._handle_eio_message``'s fast path)."""

import random

import pytest
from socketio import packet

from config.realtime.codec import PacketCodec
from config.realtime.inbound import event_parts


class _Packet(packet.Packet):
    json = PacketCodec  # the server's packet class decodes with this codec (``Server.__init__``)


def _socketio(text: str) -> tuple[int, str | None, int | None, object] | str:
    try:
        pkt = _Packet(encoded_packet=text)
    except ValueError:
        return "refused"
    return pkt.packet_type, pkt.namespace, pkt.id, pkt.data


def _ours(text: str) -> tuple[int, str | None, int | None, object] | None:
    parts = event_parts(text)
    if parts is None:
        return None
    namespace, id, body = parts
    return packet.EVENT, namespace, id, PacketCodec.loads(body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('2["location:update",{"latitude":1.5}]', (None, None, '["location:update",{"latitude":1.5}]')),
        ('2/partner,["location:update",{}]', ("/partner", None, '["location:update",{}]')),
        ('2/partner,17["booking:track",{"bookingId":1}]', ("/partner", 17, '["booking:track",{"bookingId":1}]')),
        ('212["a"]', (None, 12, '["a"]')),
        ('2/,["a"]', ("/", None, '["a"]')),
    ],
)
def test_the_common_form_is_split_without_a_packet(text, expected):
    assert event_parts(text) == expected
    assert _ours(text) == _socketio(text)


@pytest.mark.parametrize(
    "text",
    [
        "2",  # no data
        "2/partner",  # a namespace, no comma
        '2/partner?x=1,["a"]',  # a namespace's query: python-socketio strips it
        '23-["a"]',  # attachments
        '2/partner,3-["a"]',
        '2/partner,{"a":[1]}',  # not a list
        '2/partner,5{"a":[1]}',
        '2²["a"]',  # a digit that is not ASCII
        "2" + "1" * 19 + '["a"]',  # an id past int64: python-socketio's to judge (it takes 100 digits)
        '2-["a"]',
        "2 [1]",
    ],
)
def test_any_other_form_is_left_to_python_socketio(text):
    assert event_parts(text) is None


def test_what_it_splits_python_socketio_reads_the_same():
    rng = random.Random(34)
    alphabet = '2/,?-[]{}"a:1 0²x9'
    split = 0
    for _ in range(20_000):
        text = "2" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        ours = _ours(text)
        if ours is not None:
            split += 1
            assert ours == _socketio(text), text
    assert split > 200  # the corpus reaches the fast path, not only its refusals
