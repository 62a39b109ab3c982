"""Reading deliveries off the wire without aiormq's per-frame machinery: ``FrameReader`` cuts the same
frames out of any chunking of the byte stream and fails as aiormq's reader does; ``DeliveryTap`` hands
the real broker's deliveries of its consumer over whole (bodies over several frames too), in order, and
leaves every other consumer's to aiormq."""

from __future__ import annotations

import asyncio
import secrets
import time

import aiormq
import pytest
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPConnectionError, InvalidFrameError, ProtocolSyntaxError
from pamqp import commands, frame, heartbeat
from pamqp.body import ContentBody
from pamqp.frame import FrameTypes
from pamqp.header import ContentHeader

from media_mgr.amqp import frame_reader, request_age
from media_mgr.amqp.deliveries import DeliveryTap
from media_mgr.amqp.frame_reader import FrameReader

from amqp_peers import AMQP_URL, kazoo_timestamp


def wire() -> tuple[bytes, list[tuple[int, type]]]:
    """A broker's bytes for a delivery (method, header, two body frames), a heartbeat and a Channel.Close."""
    body = b"x" * 300
    frames: list[tuple[int, FrameTypes]] = [
        (1, commands.Basic.Deliver("ctag", 7, False, "kapps", "media_req")),
        (1, ContentHeader(0, len(body), commands.Basic.Properties(content_type="application/json"))),
        (1, ContentBody(body[:200])),
        (1, ContentBody(body[200:])),
        (0, heartbeat.Heartbeat()),
        (1, commands.Channel.Close(404, "NOT_FOUND", 0, 0)),
    ]
    data = b"".join(frame.marshal(value, channel) for channel, value in frames)
    return data, [(channel, type(value)) for channel, value in frames]


async def read_all(chunks: list[bytes], eof: bool = True) -> list[tuple[int, int, object]]:
    stream = asyncio.StreamReader()
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return [item async for item in FrameReader(stream)]


@pytest.mark.parametrize("size", [1, 7, 8, 13, 64, 100_000])
async def test_every_chunking_gives_the_same_frames(size: int) -> None:
    data, expected = wire()
    got = await read_all([data[i : i + size] for i in range(0, len(data), size)])
    assert [(channel, type(value)) for _, channel, value in got] == expected
    assert sum(consumed for consumed, _, _ in got) == len(data)  # aiormq's "weight": the bytes of each
    delivered = got[0][2]
    assert isinstance(delivered, commands.Basic.Deliver)
    assert (delivered.delivery_tag, delivered.routing_key) == (7, "media_req")
    assert b"".join(v.value for _, _, v in got if isinstance(v, ContentBody)) == b"x" * 300


async def test_a_connection_closed_inside_a_frame_is_an_amqp_connection_error() -> None:
    data, _ = wire()
    with pytest.raises(AMQPConnectionError, match="unexpectedly closed"):
        await read_all([data[:20]])


async def test_a_protocol_header_from_the_broker_is_refused_as_aiormq_refuses_it() -> None:
    with pytest.raises(ProtocolSyntaxError):
        await read_all([b"AMQP\x00\x00\x09\x01"])


async def test_aiormq_connects_through_it_and_its_deliveries_go_to_the_tap() -> None:
    frame_reader.install()
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        assert isinstance(channel, aiormq.Channel)
        queue = f"test.tap.{secrets.token_hex(4)}"
        other = f"test.untapped.{secrets.token_hex(4)}"
        for name in (queue, other):
            await channel.queue_declare(name, exclusive=True)
        tapped: list[tuple[int, str | None, bytes]] = []
        untapped: list[bytes] = []

        def on_delivery(
            deliver: commands.Basic.Deliver, props: commands.Basic.Properties, body: bytes
        ) -> None:
            tapped.append((int(deliver.delivery_tag or 0), props.content_type, body))

        async def callback(message: DeliveredMessage) -> None:
            untapped.append(message.body)

        DeliveryTap(channel, "tapped", on_delivery)
        await channel.basic_consume(queue, callback, no_ack=True, consumer_tag="tapped")
        await channel.basic_consume(other, callback, no_ack=True, consumer_tag="plain")
        max_body = connection.connection_tune.frame_max - 8
        bodies = [b"", b"one", secrets.token_bytes(max_body * 2 + 5), b"last"]  # the third is three frames
        for body in bodies:
            await channel.basic_publish(
                body, routing_key=queue, properties=commands.Basic.Properties(content_type="t/x")
            )
        await channel.basic_publish(b"not ours", routing_key=other)
        async with asyncio.timeout(10):
            while len(tapped) < len(bodies) or not untapped:
                await asyncio.sleep(0.01)
        assert [body for _, _, body in tapped] == bodies
        assert [tag for tag, _, _ in tapped] == sorted(tag for tag, _, _ in tapped)
        assert {content_type for _, content_type, _ in tapped} == {"t/x"}
        assert untapped == [b"not ours"]
        # The tap leaves the channel's own replies alone: an RPC on it still works.
        declared = await channel.queue_declare(queue, passive=True)
        assert declared.message_count == 0
    finally:
        await connection.close()


def properties_cases() -> list[commands.Basic.Properties]:
    """Every property this reader decodes itself, alone and together, with non-ASCII text; and the
    one it leaves to pamqp (a headers table)."""
    stamp = kazoo_timestamp()
    full = {
        "content_type": "application/json", "content_encoding": "gzip", "delivery_mode": 2, "priority": 9,
        "correlation_id": "córr", "reply_to": "ecallmgr@host-<0.1.0>", "expiration": "60000",
        "message_id": "m" * 255, "timestamp": stamp, "message_type": "média", "user_id": "guest",
        "app_id": "kazoo",
    }  # fmt: skip
    cases = [commands.Basic.Properties()]
    cases += [commands.Basic.Properties(**{name: value}) for name, value in full.items()]  # type: ignore[arg-type]
    cases.append(commands.Basic.Properties(**full))  # type: ignore[arg-type]
    cases.append(commands.Basic.Properties(content_type="t/x", headers={"x-death": 1}, timestamp=stamp))
    return cases


@pytest.mark.parametrize("props", properties_cases())
async def test_a_delivery_is_decoded_as_pamqp_decodes_it(props: commands.Basic.Properties) -> None:
    request_age.install()  # the timestamp decoder both use
    frames: list[FrameTypes] = [
        commands.Basic.Deliver("media_mgr.ctag-é", 2**62 + 5, True, "kapps", "media_req"),
        ContentHeader(0, 3, props),
        ContentBody(b"abc"),
    ]
    data = b"".join(frame.marshal(value, 3) for value in frames)
    ours = await read_all([data])
    theirs = [frame.unmarshal(frame.marshal(value, 3)) for value in frames]
    assert [(consumed, channel) for consumed, channel, _ in ours] == [(c, ch) for c, ch, _ in theirs]
    for (_, _, mine_frame), (_, _, pamqps_frame) in zip(ours, theirs, strict=True):
        assert type(mine_frame) is type(pamqps_frame)
        mine: object = mine_frame
        pamqps: object = pamqps_frame
        if isinstance(mine_frame, ContentHeader):
            assert isinstance(pamqps_frame, ContentHeader)
            assert (mine_frame.weight, mine_frame.body_size) == (pamqps_frame.weight, pamqps_frame.body_size)
            mine, pamqps = mine_frame.properties, pamqps_frame.properties
        for name in mine.__slots__ if hasattr(mine, "__slots__") else vars(mine):
            left, right = getattr(mine, name), getattr(pamqps, name)
            assert left == right, name
            assert getattr(left, "raw", None) == getattr(right, "raw", None), name  # Kazoo's 64 bits


async def test_a_broken_delivery_frame_is_refused_as_pamqp_refuses_it() -> None:
    data = frame.marshal(commands.Basic.Deliver("ctag", 1, False, "", "q"), 1)
    with pytest.raises(InvalidFrameError):
        await read_all([data[:-1] + b"\x00"])  # no frame end
    short = bytearray(data)
    short[11] = 200  # the consumer tag says it is longer than the frame
    with pytest.raises(InvalidFrameError):
        await read_all([bytes(short)])


async def test_a_backlog_is_handed_out_with_the_loop_let_run_in_between() -> None:
    """Frames read at once are handed out without an await; every millisecond of them the reader lets
    the loop run, so replies queued for aiormq's writer task and timed acks leave during a backlog."""
    data = b"".join(frame.marshal(heartbeat.Heartbeat(), 0) for _ in range(2000))
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    reader = FrameReader(stream)
    got = 0
    async for _ in reader:
        got += 1
        until = time.monotonic() + 0.0001  # 0.1 ms of work a frame: 200 ms for the backlog
        while time.monotonic() < until:
            pass
    counter.cancel()
    assert got == 2000
    assert turns >= 20  # about one a millisecond; none at all without the reader's yields
