"""discord.py meeting a bot's shard limit, for tests/client_libraries.rs.

It reads SPACEBAR_URL and BOT_TOKEN from the environment and CLIENT from its first argument:
"plain" runs discord.Client (one connection, no shard), "auto" runs discord.AutoShardedClient,
which asks GET /gateway/bot how many shards to run. It prints one JSON line per outcome:
{"event": "closed", "code": N} when the gateway closed the connection for good, and
{"event": "ready", "shard_count": N, "guilds": [...]} once every shard is ready.
As in discord_py_bot.py, only the addresses discord.py would take from Discord are changed.
"""

import asyncio
import json
import logging
import os
import sys

import discord
import discord.http
import yarl
from discord.gateway import DiscordWebSocket


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(kind):
    base = os.environ["SPACEBAR_URL"].rstrip("/")
    token = os.environ["BOT_TOKEN"]
    discord.http.Route.BASE = f"{base}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(base.replace("http://", "ws://", 1))
    intents = discord.Intents.none()
    intents.guilds = True
    make = discord.AutoShardedClient if kind == "auto" else discord.Client
    client = make(intents=intents, chunk_guilds_at_startup=False)

    @client.event
    async def on_ready():
        emit(
            "ready",
            shard_count=client.shard_count,
            guilds=sorted(str(guild.id) for guild in client.guilds),
        )
        await client.close()

    try:
        async with client:
            await client.start(token)
    except discord.ConnectionClosed as closed:
        emit("closed", code=closed.code)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(sys.argv[1]))
