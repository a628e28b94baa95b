"""A discord.py bot pointed at a spacebar server, for the conformance test tests/discord_py.rs.

It reads SPACEBAR_URL (http://host:port) and BOT_TOKEN from the environment, prints one JSON
line on stdout per event it sees (ready, member_join, message, message_edit, replied, …),
answers "!ping" with "pong", "!burst N" with N messages, "!report" with an embed and a file,
"!webhook ID TOKEN" by posting through that webhook and editing what it posted, and registers
a slash command /hello that it answers. Errors go to stderr, which the test shows
on failure.
Nothing here works around the server: the only changes are the two addresses discord.py would
otherwise take from Discord.
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
import yarl
from discord.gateway import DiscordWebSocket


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
