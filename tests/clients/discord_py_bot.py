"""A discord.py bot pointed at a spacebar server, for the conformance test tests/discord_py.rs.

It reads SPACEBAR_URL (http://host:port) and BOT_TOKEN from the environment, prints one JSON
line on stdout per event it sees (ready, member_join, message, message_edit, replied, …),
answers "!ping" with "pong", "!burst N" with N messages, "!report" with an embed and a file,
"!webhook ID TOKEN" by posting through that webhook and editing what it posted, "!voice
CHANNEL_ID" by joining that voice channel and playing three seconds of Opus, and registers
a slash command /hello that it answers. Errors go to stderr, which the test shows
on failure.
Nothing here works around the server: the only changes are the addresses discord.py would
otherwise take from Discord (and the voice gateway's scheme: discord.py always says wss://,
the test server speaks plain ws://).
"""

import asyncio
import io
import json
import logging
import os
import sys
import urllib.request

import discord
import discord.http
import nacl.exceptions
import nacl.secret
import yarl
from discord.gateway import DiscordWebSocket


# One 20 ms Opus frame of silence, as Discord's clients send it.
OPUS_SILENCE = b"\xf8\xff\xfe"


class Silence(discord.AudioSource):
    """`frames` Opus frames, already encoded: nothing for discord.py to encode."""

    def __init__(self, frames):
        self.left = frames

    def read(self):
        if self.left == 0:
            return b""
        self.left -= 1
        return OPUS_SILENCE

    def is_opus(self):
        return True


def opened(voice, data):
    """Whether `data` is an Opus packet (payload type 120) sealed with the bot's key, as
    aead_xchacha20_poly1305_rtpsize seals it: a 12-byte header, the sealed payload, a counter."""
    if len(data) < 32 or data[1] & 0x7F != 120:
        return False
    header, sealed, counter = bytes(data[:12]), bytes(data[12:-4]), bytes(data[-4:])
    try:
        nacl.secret.Aead(bytes(voice.secret_key)).decrypt(sealed, header, counter + bytes(20))
    except nacl.exceptions.CryptoError:
        return False
    return True


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def gateway_url(base, token):
    """Where the gateway is, asked as discord.js asks (discord.py's Client assumes Discord's)."""
    request = urllib.request.Request(
        f"{base}/api/v10/gateway/bot", headers={"Authorization": f"Bot {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["url"]


async def main():
    base = os.environ["SPACEBAR_URL"].rstrip("/")
    token = os.environ["BOT_TOKEN"]
    discord.http.Route.BASE = f"{base}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url(base, token))
    if base.startswith("http://"):
        ws_connect = discord.http.HTTPClient.ws_connect

        async def plain_ws_connect(self, url, **kwargs):
            return await ws_connect(self, url.replace("wss://", "ws://", 1), **kwargs)

        discord.http.HTTPClient.ws_connect = plain_ws_connect

    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    client = discord.Client(intents=intents, chunk_guilds_at_startup=False)
    tree = discord.app_commands.CommandTree(client)

    @tree.command(name="hello", description="Greets someone")
    async def hello(interaction: discord.Interaction, name: str):
        await interaction.response.send_message(f"hello {name}")
        emit("slash_answered", interaction_id=str(interaction.id), user_id=str(interaction.user.id))

    @client.event
    async def on_ready():
        emit(
            "ready",
            user_id=str(client.user.id),
            bot=client.user.bot,
            application_id=str(client.application_id),
            guilds=[str(guild.id) for guild in client.guilds],
            channels=[str(channel.id) for guild in client.guilds for channel in guild.channels],
        )
        synced = await tree.sync()
        emit("synced", commands=[{"id": str(c.id), "name": c.name} for c in synced])

    @client.event
    async def on_member_join(member):
        emit(
            "member_join",
            guild_id=str(member.guild.id),
            user_id=str(member.id),
            username=member.name,
            member_count=member.guild.member_count,
        )

    @client.event
    async def on_message(message):
        emit(
            "message",
            message_id=str(message.id),
            channel_id=str(message.channel.id),
            author_id=str(message.author.id),
            content=message.content,
        )
        if message.author.id != client.user.id and message.content == "!ping":
            reply = await message.channel.send("pong")
            emit("replied", message_id=str(reply.id), content=reply.content)
        if message.author.id != client.user.id and message.content.startswith("!burst "):
            # As fast as discord.py lets it: it paces itself by the rate-limit headers (a 429
            # would be logged as a warning, which the test reads as a failure).
            count = int(message.content.split()[1])
            for n in range(count):
                await message.channel.send(f"burst {n}")
            emit("burst_done", count=count)
        if message.author.id != client.user.id and message.content == "!report":
            embed = discord.Embed(title="Report", description="All good", colour=0x5865F2)
            embed.add_field(name="uptime", value="42")
            report = discord.File(io.BytesIO(b"report bytes\n"), filename="report.txt")
            sent = await message.channel.send(embed=embed, file=report)
            emit(
                "report_sent",
                message_id=str(sent.id),
                embeds=[e.title for e in sent.embeds],
                files=[a.filename for a in sent.attachments],
            )

        if message.author.id != client.user.id and message.content.startswith("!webhook "):
            # A webhook known by its id and token alone, as discord.py drives one.
            webhook_id, webhook_token = message.content.split()[1:3]
            webhook = discord.Webhook.partial(int(webhook_id), webhook_token, client=client)
            sent = await webhook.send("from a webhook", username="Hooked", wait=True)
            edited = await sent.edit(content="from a webhook, edited")
            emit(
                "webhook_sent",
                message_id=str(sent.id),
                webhook_id=str(sent.webhook_id),
                author=sent.author.name,
                edited=edited.content,
            )

        if message.author.id != client.user.id and message.content.startswith("!voice "):
            channel = client.get_channel(int(message.content.split()[1]))
            voice = await channel.connect()
            emit("voice_connected", channel_id=str(channel.id), mode=voice.mode)
            heard = []
            # discord.py sends but never reads voice; opening what arrives on its socket, as
            # receiving extensions do, shows that others' audio reaches the bot sealed with its key.
            voice._connection.add_socket_listener(lambda data: heard.append(opened(voice, data)))
            played = asyncio.Event()
            voice.play(Silence(150), after=lambda _: client.loop.call_soon_threadsafe(played.set))
            await played.wait()
            await voice.disconnect()
            emit("voice_played", channel_id=str(channel.id), heard=sum(heard))

    @client.event
    async def on_raw_message_edit(payload):
        emit(
            "message_edit",
            message_id=str(payload.message_id),
            channel_id=str(payload.channel_id),
            content=payload.message.content,
            cached=payload.cached_message is not None,
        )

    async with client:
        await client.start(token)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
