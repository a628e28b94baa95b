"""A browser-style voice client on aiortc, speaking the voice gateway the way Fermi does.

It sends only a fragment of its SDP offer in SELECT_PROTOCOL, takes the server's ICE-lite
answer fragment from SESSION_DESCRIPTION and builds the server's whole description itself;
when op 12 tells it another participant's SSRCs it adds a receive-only transceiver for each new
stream, renegotiates locally and again writes the server's answer itself. The server never sends
an offer.

Usage: voice_peer.py URL SERVER_ID USER_ID SESSION_ID TOKEN (publish|listen)

Prints one JSON line per thing a user would notice: the gateway's messages it acts on, a count of
decoded audio and video frames every half second, and how the connection closed. Reads commands
from stdin: `leave` closes the voice connection cleanly and exits; `drop-media` closes only the
peer connection, keeping the voice gateway's.
"""

import asyncio
import json
import logging
import os
import sys
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from frames import Frames, commands, messages, say


def attributes(sdp, name):
    prefix = f"a={name}:"
    return [line[len(prefix):] for line in sdp.splitlines() if line.startswith(prefix)]


def fragment_of(offer):
    """The lines of the offer Fermi sends: credentials, fingerprint, extmaps, codecs."""
    keep = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=extmap:", "a=rtpmap:", "a=fmtp:")
    seen, lines = set(), []
    for line in offer.splitlines():
        if line.startswith(keep) and line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines) + "\n"


def sections(sdp):
    """The offer's m-sections as (kind, mid, lines)."""
    out, current = [], None
    for line in sdp.splitlines():
        if line.startswith("m="):
            current = [line]
            out.append(current)
        elif current is not None:
            current.append(line)
    result = []
    for lines in out:
        kind = lines[0][2:].split()[0]
        mid = next(l[6:] for l in lines if l.startswith("a=mid:"))
        result.append((kind, mid, lines))
    return result


class Peer:
    def __init__(self, url, server_id, user_id, session_id, token, role):
        self.url = url
        self.identify = {
            "server_id": server_id,
            "user_id": user_id,
            "session_id": session_id,
            "token": token,
            "video": role == "publish",
            "streams": [{"type": "video", "rid": "100", "quality": 100}],
        }
        self.role = role
        self.pc = RTCPeerConnection()
        self.seq = -1
        self.answer = None
        self.video_codec = "VP8"
        # mid -> (ssrc the server sends on, kind) for streams from others
        self.incoming = {}
        self.known = set()
        self.lock = asyncio.Lock()
        self.frames = Frames()
        self.ws = None

    async def send(self, op, d):
        await self.ws.send_json({"op": op, "d": d})

    async def heartbeat(self, interval):
        while True:
            await asyncio.sleep(interval / 1000)
            await self.send(3, {"t": int(time.time() * 1000), "seq_ack": self.seq})


    def remote_answer(self, local):
        """The server's whole answer, written from its fragment, as a browser client does."""
        frag = self.answer
        port = frag.split("\n")[0].split()[1]
        ip = next(l.split()[2] for l in frag.splitlines() if l.startswith("c="))
        ufrag = attributes(frag, "ice-ufrag")[0]
        pwd = attributes(frag, "ice-pwd")[0]
        fingerprint = attributes(frag, "fingerprint")[0]
        candidate = attributes(frag, "candidate")[0]
        parts = sections(local)
        sdp = [
            "v=0",
            "o=- 1 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=ice-lite",
            "a=group:BUNDLE " + " ".join(mid for _, mid, _ in parts),
            "a=msid-semantic: WMS *",
        ]
        for kind, mid, lines in parts:
            rtpmaps = [l for l in lines if l.startswith("a=rtpmap:")]
            wanted = "opus" if kind == "audio" else self.video_codec
            pts = []
            for line in rtpmaps:
                pt, name = line[9:].split(" ", 1)
                if name.split("/")[0].lower() == wanted.lower():
                    pts.append(pt)
            for line in rtpmaps:
                pt, name = line[9:].split(" ", 1)
                fmtp = [l for l in lines if l.startswith(f"a=fmtp:{pt} apt=")]
                if name.startswith("rtx/") and fmtp and fmtp[0].split("apt=")[1] in pts:
                    pts.append(pt)
            sdp += [
                f"m={kind} {port} UDP/TLS/RTP/SAVPF {' '.join(pts)}",
                f"c=IN IP4 {ip}",
                f"a=rtcp:{port}",
                f"a=ice-ufrag:{ufrag}",
                f"a=ice-pwd:{pwd}",
                f"a=fingerprint:{fingerprint}",
                "a=setup:passive",
                f"a=mid:{mid}",
            ]
            sdp += [l for l in lines if l.startswith("a=extmap:") and "sdes:mid" in l]
            if mid in self.incoming:
                sdp.append("a=sendonly")
            else:
                sdp.append("a=recvonly")
            sdp.append("a=rtcp-mux")
            for pt in pts:
                sdp += [l for l in lines if l.startswith((f"a=rtpmap:{pt} ", f"a=fmtp:{pt} "))]
                if kind == "video" and not any(
                    l.startswith(f"a=rtpmap:{pt} rtx") for l in lines
                ):
                    sdp += [f"a=rtcp-fb:{pt} nack", f"a=rtcp-fb:{pt} nack pli"]
            if mid in self.incoming:
                ssrc, _ = self.incoming[mid]
                sdp += [f"a=ssrc:{ssrc} cname:sfu", f"a=ssrc:{ssrc} msid:sfu {kind}{ssrc}"]
            sdp += [f"a=candidate:{candidate}", "a=end-of-candidates"]
        return "\r\n".join(sdp) + "\r\n"

    async def negotiate(self):
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        local = self.pc.localDescription.sdp
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=self.remote_answer(local), type="answer")
        )

    async def receive_from(self, d):
        async with self.lock:
            # aiortc starts its transports after the first answer; renegotiating before they
            # are up races with that start.
            while self.pc.connectionState not in ("connected", "failed", "closed"):
                await asyncio.sleep(0.05)
            added = False
            for kind in ("audio", "video"):
                ssrc = d.get(f"{kind}_ssrc") or 0
                # A new SSRC (a new participant, or one who rejoined) gets its own m-line.
                if ssrc and ssrc not in self.known:
                    self.known.add(ssrc)
                    transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                    transceiver._pending_ssrc = (ssrc, kind)
                    added = True
            if not added:
                return
            offer = await self.pc.createOffer()
            await self.pc.setLocalDescription(offer)
            for transceiver in self.pc.getTransceivers():
                pending = getattr(transceiver, "_pending_ssrc", None)
                if pending and transceiver.mid is not None:
                    self.incoming[transceiver.mid] = pending
            local = self.pc.localDescription.sdp
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=self.remote_answer(local), type="answer")
            )
            # aiortc starts the new receivers in a background task that walks the live list
            # of transceivers; let it finish before the next op 12 adds more.
            await asyncio.sleep(0.2)

    async def publish(self):
        ssrcs = {}
        for transceiver in self.pc.getTransceivers():
            sender = transceiver.sender
            if sender.track is not None:
                ssrcs[sender.track.kind] = (sender._ssrc, sender._rtx_ssrc)
        audio = ssrcs.get("audio", (0, 0))[0]
        video, rtx = ssrcs.get("video", (0, 0))
        await self.send(12, {
            "audio_ssrc": audio,
            "video_ssrc": video,
            "rtx_ssrc": rtx,
            "streams": [{"type": "video", "rid": "100", "ssrc": video, "active": True,
                         "quality": 100, "rtx_ssrc": rtx, "max_bitrate": 2500000,
                         "max_framerate": 30, "max_resolution": {"type": "fixed", "width": 640, "height": 480}}],
        })
        await self.send(5, {"speaking": 1, "delay": 0, "ssrc": audio})

    async def commands(self):
        async for line in commands():
            if line == b"leave":
                await self.ws.close(code=1000)
                return
            if line == b"drop-media":
                # Nothing more on the media path (after aiortc's RTCP BYE and DTLS
                # close_notify, which leave the server's connection state "connected"),
                # while the voice gateway's connection stays up and heartbeats.
                await self.pc.close()
                say(event="media_dropped")

    async def run(self):
        @self.pc.on("track")
        def on_track(track):
            say(event="track", kind=track.kind)
            asyncio.ensure_future(self.frames.consume(track))

        @self.pc.on("connectionstatechange")
        def on_state():
            say(event="connection", state=self.pc.connectionState)

        if self.role == "publish":
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
            self.pc.addTransceiver(VideoStreamTrack(), direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="sendrecv")
            self.pc.addTransceiver("video", direction="sendrecv")

        tasks = []
        async for payload in messages(self, tasks):
            self.seq = payload.get("seq", self.seq)
            op, d = payload["op"], payload["d"]
            if op == 8:
                say(event="hello", d=d)
                tasks.append(asyncio.ensure_future(self.heartbeat(d["heartbeat_interval"])))
                await self.send(0, self.identify)
            elif op == 2:
                say(event="ready", d=d)
                offer = await self.pc.createOffer()
                await self.pc.setLocalDescription(offer)
                fragment = fragment_of(self.pc.localDescription.sdp)
                await self.send(1, {
                    "protocol": "webrtc",
                    "data": fragment,
                    "sdp": fragment,
                    "codecs": [
                        {"name": "opus", "type": "audio", "priority": 1000, "payload_type": 96},
                    ],
                })
            elif op == 4:
                say(event="session_description", d=d)
                self.answer = d["sdp"]
                self.video_codec = d.get("video_codec") or "VP8"
                await self.negotiate()
                if self.role == "publish":
                    await self.publish()
            elif op == 12:
                say(event="video", d=d)
                await self.receive_from(d)
            elif op == 5:
                say(event="speaking", d=d)
            elif op == 13:
                say(event="client_disconnect", d=d)
            elif op == 6:
                pass
            else:
                say(event="op", op=op, d=d)
        await self.pc.close()


if __name__ == "__main__":
    if os.environ.get("VOICE_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
    url, server_id, user_id, session_id, token, role = sys.argv[1:7]
    asyncio.run(Peer(url, server_id, user_id, session_id, token, role).run())
