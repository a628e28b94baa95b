"""What the aiortc peers (voice_peer.py, room_peer.py) share: their JSON lines, the count of
frames they decode per kind (reported every half second), and the commands on their stdin."""

import asyncio
import json
import sys


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
