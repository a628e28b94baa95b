"""A rooms client on aiortc, speaking `/rooms/ws` (docs/rooms.md) as a browser would.

Usage: room_peer.py URL (publish AUDIO_CODEC VIDEO_CODEC | subscribe)

`publish` joins, adds a track per codec named (`-` for none; e.g. `opus VP8`, `PCMU -`; the
audio is a loud tone) and the `_lossy` data channel, offers them on its publish connection with
only that codec, and applies `publish-answer`. `subscribe` joins with `auto_subscribe`, answers
every `subscribe-offer` on its subscribe connection and decodes what arrives.

Prints one JSON line per server message (`{"event": "message", "message": …}`), the codec each
received track was negotiated with (`{"event": "track", …}`), and every half second the
frames decoded per kind (`{"event": "frames", …}`). Reads commands from stdin, one JSON message
per line, sent as is, or with a `lossy` field: that field's value, sent on the `_lossy` data
channel (`leave` closes cleanly and exits). What arrives on a `_lossy` channel is printed as
`{"event": "lossy", "data": …}`.
"""

import asyncio
import json
import math
import struct
import sys

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from frames import Frames, commands, messages, say


# 20 ms of a 400 Hz tone at 48 kHz, half of full scale: well above the speaking threshold.
TONE = struct.pack("<960h", *(int(16000 * math.sin(2 * math.pi * 400 * n / 48000)) for n in range(960)))


class Tone(AudioStreamTrack):
    async def recv(self):
        frame = await super().recv()
        frame.planes[0].update(TONE[: len(bytes(frame.planes[0]))])
        return frame


class Peer:
    def __init__(self, url, role, codecs):
        self.url = url
        self.role = role
        self.codecs = codecs
        self.publish_pc = RTCPeerConnection()
        self.subscribe_pc = RTCPeerConnection()
        self.frames = Frames()
        self.ws = None

        self.lossy = None

        @self.subscribe_pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self.frames.consume(track))

        @self.subscribe_pc.on("datachannel")
        def on_datachannel(channel):
            @channel.on("message")
            def on_message(message):
                say(event="lossy", label=channel.label, data=json.loads(message))

    async def send(self, message):
        await self.ws.send_json(message)


    def add(self, kind, codec):
        track = Tone() if kind == "audio" else VideoStreamTrack()
        transceiver = self.publish_pc.addTransceiver(track, direction="sendonly")
        wanted = [
            c for c in RTCRtpSender.getCapabilities(kind).codecs
            if c.mimeType.lower() == f"{kind}/{codec}".lower()
        ]
        transceiver.setCodecPreferences(wanted)

    async def publish(self):
        audio, video = self.codecs
        if audio != "-":
            self.add("audio", audio)
        if video != "-":
            self.add("video", video)
        self.lossy = self.publish_pc.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        offer = await self.publish_pc.createOffer()
        await self.publish_pc.setLocalDescription(offer)
        tracks = []
        for transceiver in self.publish_pc.getTransceivers():
            if transceiver.kind not in ("audio", "video"):
                continue
            source = "microphone" if transceiver.kind == "audio" else "camera"
            tracks.append({"mid": transceiver.mid, "source": source})
        await self.send({
            "type": "publish-offer",
            "sdp": self.publish_pc.localDescription.sdp,
            "tracks": tracks,
        })

    async def on_message(self, message):
        kind = message["type"]
        if kind == "joined" and self.role == "publish":
            await self.publish()
        elif kind == "publish-answer":
            await self.publish_pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer"))
        elif kind == "subscribe-offer":
            await self.subscribe_pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="offer"))
            answer = await self.subscribe_pc.createAnswer()
            await self.subscribe_pc.setLocalDescription(answer)
            await self.send({"type": "subscribe-answer", "sdp": self.subscribe_pc.localDescription.sdp})
            for transceiver in self.subscribe_pc.getTransceivers():
                codecs = transceiver._codecs
                if codecs:
                    say(event="track", kind=transceiver.kind, mid=transceiver.mid,
                        codec=codecs[0].mimeType)

    async def commands(self):
        async for line in commands():
            if line == b"leave":
                await self.ws.close(code=1000)
                return
            command = json.loads(line)
            if "lossy" in command:
                self.lossy.send(json.dumps(command["lossy"]))
            else:
                await self.send(command)

    async def run(self):
        join = {"type": "join", "auto_subscribe": self.role == "subscribe"}
        async for payload in messages(self, [], first=join):
            say(event="message", message=payload)
            await self.on_message(payload)
        await self.publish_pc.close()
        await self.subscribe_pc.close()


if __name__ == "__main__":
    url, role = sys.argv[1:3]
    asyncio.run(Peer(url, role, sys.argv[3:5] if role == "publish" else ("-", "-")).run())
