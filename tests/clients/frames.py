"""What the aiortc peers (voice_peer.py, room_peer.py) share: their JSON lines, the count of
frames they decode per kind (reported every half second), the commands on their stdin, and
their signalling socket with those running beside it."""

import asyncio
import json
import sys

import aiohttp


def say(**fields):
    print(json.dumps(fields), flush=True)


class Frames:
    def __init__(self):
        self.counts = {"audio": 0, "video": 0}

    async def report(self):
        while True:
            await asyncio.sleep(0.5)
            say(event="frames", **self.counts)

    async def consume(self, track):
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.counts[track.kind] += 1


async def commands():
    """The lines of stdin, stripped, until it closes (then one last `leave`)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            yield b"leave"
            return
        yield line.strip()


async def messages(peer, tasks, first=None):
    """The JSON messages of `peer`'s WebSocket to `peer.url` (set as `peer.ws`), with its frame
    report and its `commands()` running beside it; `first` is sent before any is read. Once the
    socket closes (or sends anything but text) it says how, and cancels `tasks`: those two and
    any the caller added."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(peer.url) as ws:
            peer.ws = ws
            tasks.append(asyncio.ensure_future(peer.frames.report()))
            tasks.append(asyncio.ensure_future(peer.commands()))
            if first is not None:
                await ws.send_json(first)
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                yield json.loads(message.data)
            say(event="closed", code=ws.close_code)
    for task in tasks:
        task.cancel()
