//! `search`: message search latency in one big guild.
//!
//! 1. Over REST: registers `--authors` users, the first makes a guild with `--channels` text
//!    channels.
//! 2. Straight into the server's PostgreSQL (`--database-url`): `--messages` messages in that
//!    guild, written by `INSERT … SELECT` batches that PostgreSQL generates itself (no rows cross
//!    the wire): one message every 30 s going back from now, 3 to 15 words each drawn from a
//!    vocabulary (common English words, then a long tail of made-up ones) with a skew like
//!    real text, 5% with a file (most of them images), 3% mentioning someone, authors
//!    skewed too. Then `VACUUM ANALYZE`, as autovacuum would after such a load.
//! 3. Over REST: `GET /guilds/{id}/messages/search`, one request at a time, `--queries` of each
//!    kind (a common word, a rare word, one author, `has=file`, a word from the middle of the
//!    vocabulary with an author), after a warm-up; latency p50/p99 per kind and overall.
//!
//! Run the server with rate limits off (the tool searches hundreds of times a minute).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use awc::http::{Method, StatusCode};
use clap::Args;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::json;

use crate::rest::{self, Attempt};
use crate::target::{self, Quiet, Target};
use crate::{setup, stats, BoxError};

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub target: Target,
    /// The server's PostgreSQL URL: the messages are written straight into its database.
    #[arg(long)]
    pub database_url: String,
    /// Messages in the guild.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: i64,
    /// Users who wrote them (registered over REST).
    #[arg(long, default_value_t = 20)]
    pub authors: usize,
    /// Text channels they are spread over.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Measured searches of each kind.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Search the guild of an earlier run again (its id is printed at the start), without
    /// registering or writing anything.
    #[arg(long)]
    pub reuse_run: Option<String>,
    #[command(flatten)]
    pub quiet: Quiet,
}

/// Rows per `INSERT … SELECT`.
const BATCH: i64 = 50_000;
/// Time between two generated messages.
const STEP_MS: i64 = 30_000;
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;
/// Searches before measuring (caches, connections).
const WARM_UP: usize = 20;

/// The most frequent words first: a message's words are drawn with a skew towards the front.
const COMMON: &[&str] = &[
    "the", "to", "and", "you", "it", "is", "that", "of", "in", "for", "this", "on", "what", "just",
    "with", "have", "be", "not", "but", "are", "so", "can", "do", "was", "if", "we", "my", "lol",
    "like", "at", "all", "get", "they", "about", "one", "no", "yeah", "think", "know", "how",
    "there", "time", "good", "now", "out", "people", "game", "will", "make", "some", "want",
    "really", "server", "new", "when", "would", "work", "from", "day", "see", "help", "thanks",
    "code", "still", "music", "back", "night", "world", "bot", "update", "video", "picture",
    "friend", "weekend", "coffee", "build", "release", "question", "channel", "voice", "stream",
    "meeting", "tomorrow", "morning", "pizza", "movie",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mer", "ti", "van", "sor", "bel", "qu", "ri", "nox", "pa", "del", "fi", "gor",
    "un", "sha", "wen", "ju", "pra", "zel", "mo", "tes", "ca", "lin", "dra", "vo", "ne", "sil",
];
/// Made-up words after the common ones: the long tail.
const TAIL: usize = 20_000;

#[derive(Deserialize)]
struct Me {
    id: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Results {
    total_results: u64,
}

pub fn run(args: SearchArgs) -> Result<(), BoxError> {
    if args.messages < 1 || args.authors == 0 || args.channels == 0 || args.queries == 0 {
        return Err("--messages, --authors, --channels and --queries must be at least 1".into());
    }
    let api = args.target.api();
    let run_id = args.reuse_run.clone().unwrap_or_else(target::run_id);
    println!("{}", target::machine_note(&args.target.base()));
    println!("run {run_id}");
    actix_rt::System::new().block_on(async {
        let client = rest::client(args.target.timeout());
        let words = vocabulary();
        let world = match &args.reuse_run {
            Some(run) => find_world(&client, &api, &args, run).await?,
            None => {
                let world = build_world(&client, &api, &args, &run_id).await?;
                fill(&args, &world, &words).await?;
                world
            }
        };
        args.quiet.wait();
        measure(&client, &api, &args, &world, &words).await
    })
}

/// The guild, its channels and the authors (the first one owns the guild and searches).
struct World {
    token: String,
    guild_id: i64,
    channel_ids: Vec<i64>,
    author_ids: Vec<i64>,
}

async fn build_world(
    client: &awc::Client,
    api: &str,
    args: &SearchArgs,
    run_id: &str,
) -> Result<World, BoxError> {
    let registered = rest::register_all(client, api, args.authors, 8, run_id).await;
    let token = registered
        .tokens
        .first()
        .cloned()
        .ok_or_else(|| format!("no user registered: {:?}", registered.errors))?;
    let author_ids = ids_of(client, api, &registered.tokens).await?;
    let guilds = setup::create_guilds(client, api, &token, 1, 1, run_id).await;
    let guild = guilds
        .ok
        .first()
        .cloned()
        .ok_or_else(|| format!("no guild: {}", guilds.describe()))?;
    let mut channel_ids = vec![guild.channel_id.parse()?];
    for i in 1..args.channels {
        let created: Created = rest::call_ok(
            client,
            Method::POST,
            &format!("{api}/guilds/{}/channels", guild.id),
            Some(&token),
            Some(&json!({ "name": format!("search-{i}") })),
            "POST /guilds/{id}/channels",
        )
        .await?;
        channel_ids.push(created.id.parse()?);
    }
    println!(
        "guild {} with {} channels, {} authors",
        guild.id,
        channel_ids.len(),
        author_ids.len()
    );
    Ok(World {
        token,
        guild_id: guild.id.parse()?,
        channel_ids,
        author_ids,
    })
}

/// The world of run `run`: its users log in again, the first one's guild.
async fn find_world(
    client: &awc::Client,
    api: &str,
    args: &SearchArgs,
    run: &str,
) -> Result<World, BoxError> {
    let mut tokens = Vec::with_capacity(args.authors);
    for i in 0..args.authors {
        tokens.push(rest::login(client, api, i, run).await?);
    }
    let author_ids = ids_of(client, api, &tokens).await?;
    // The user who made the guild is the one in it (registrations finish in any order).
    for token in &tokens {
        let guilds: Vec<Created> = rest::call_ok(
            client,
            Method::GET,
            &format!("{api}/users/@me/guilds"),
            Some(token),
            None,
            "GET /users/@me/guilds",
        )
        .await?;
        if let Some(guild) = guilds.first() {
            return Ok(World {
                token: token.clone(),
                guild_id: guild.id.parse()?,
                channel_ids: Vec::new(),
                author_ids,
            });
        }
    }
    Err(format!("run {run}: none of its users is in a guild").into())
}

/// The user id of each token.
async fn ids_of(client: &awc::Client, api: &str, tokens: &[String]) -> Result<Vec<i64>, BoxError> {
    let mut ids = Vec::with_capacity(tokens.len());
    for token in tokens {
        let me: Me = rest::call_ok(
            client,
            Method::GET,
            &format!("{api}/users/@me"),
            Some(token),
            None,
            "GET /users/@me",
        )
        .await?;
        ids.push(me.id.parse()?);
    }
    Ok(ids)
}

/// The common words, then [`TAIL`] made-up ones of two to four syllables (the same every run).
fn vocabulary() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(17);
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    while words.len() < COMMON.len() + TAIL {
        let syllables = rng.random_range(2..=4);
        let word: String = (0..syllables)
            .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
            .collect();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// Writes the messages, [`BATCH`] at a time, then vacuums and analyzes the table.
async fn fill(args: &SearchArgs, world: &World, words: &[String]) -> Result<(), BoxError> {
    // Here only: its `first` and the like would shadow the slices' elsewhere.
    use diesel_async::RunQueryDsl;

    let mut conn = AsyncPgConnection::establish(&args.database_url).await?;
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    // The words in a table of this session, by their rank: drawing from a 20,000-element array
    // parameter instead costs a walk along the array per word.
    diesel::sql_query("CREATE TEMP TABLE bench_words (rank INT PRIMARY KEY, word TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    diesel::sql_query(
        "INSERT INTO bench_words SELECT rank, word \
         FROM unnest($1::text[]) WITH ORDINALITY AS w(word, rank)",
    )
    .bind::<Array<Text>, _>(words)
    .execute(&mut conn)
    .await?;
    let count = words.len();
    // Message g (1 ..= total) was sent (total - g) steps ago; its snowflake's low bits are g's.
    // Words are drawn at rank 1 + ⌊n·u³⌋ (u uniform): "the" is in about a third of the
    // messages, a word at the end of the tail in about one in ten thousand.
    let insert = format!(
        "INSERT INTO messages (id, channel_id, guild_id, author_id, content, mentions, \
                               attachments, created_at) \
         SELECT ((t - {DISCORD_EPOCH_MS}) << 22) | (g & 4095), \
                $3[1 + g % cardinality($3)], $4, \
                $5[1 + floor(power(random(), 2) * cardinality($5))::int], \
                (SELECT string_agg(w.word, ' ') \
                   FROM (SELECT 1 + floor(power(random(), 3) * {count})::int AS rank \
                           FROM generate_series(0, 2 + g % 13)) AS drawn \
                   JOIN bench_words AS w USING (rank)), \
                CASE WHEN random() < 0.03 \
                     THEN ARRAY[$5[1 + floor(random() * cardinality($5))::int]] \
                     ELSE '{{}}'::bigint[] END, \
                CASE WHEN random() < 0.05 THEN jsonb_build_array(jsonb_build_object( \
                     'id', g::text, 'filename', 'file.png', 'size', 1024, \
                     'url', 'https://cdn.invalid/file.png', \
                     'proxy_url', 'https://cdn.invalid/file.png', \
                     'content_type', CASE WHEN random() < 0.6 THEN 'image/png' \
                                          ELSE 'application/pdf' END)) \
                     ELSE '[]'::jsonb END, \
                to_timestamp(t / 1000.0) \
         FROM (SELECT g, {now_ms} - ($2 - g) * {STEP_MS} AS t \
                 FROM generate_series($1::bigint, least($1 + {BATCH} - 1, $2)) AS g) AS s"
    );
    let started = Instant::now();
    let mut from = 1;
    while from <= args.messages {
        diesel::sql_query(&insert)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(args.messages)
            .bind::<Array<BigInt>, _>(&world.channel_ids)
            .bind::<BigInt, _>(world.guild_id)
            .bind::<Array<BigInt>, _>(&world.author_ids)
            .execute(&mut conn)
            .await?;
        from += BATCH;
        let done = (from - 1).min(args.messages);
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "  messages {done}/{} ({secs:.0} s, {:.0}/s)",
            args.messages,
            done as f64 / secs
        );
    }
    let inserted = started.elapsed();
    diesel::sql_query("VACUUM ANALYZE messages")
        .execute(&mut conn)
        .await?;
    println!(
        "filled: {} messages in {:.1} s ({:.0}/s), then VACUUM ANALYZE in {:.1} s",
        args.messages,
        inserted.as_secs_f64(),
        args.messages as f64 / inserted.as_secs_f64(),
        (started.elapsed() - inserted).as_secs_f64()
    );
    Ok(())
}

/// One kind of search: its name and how to make one of its query strings.
type Kind<'a> = (&'static str, Box<dyn Fn(&mut StdRng) -> String + 'a>);

async fn measure(
    client: &awc::Client,
    api: &str,
    args: &SearchArgs,
    world: &World,
    words: &[String],
) -> Result<(), BoxError> {
    let authors = &world.author_ids;
    let tail = &words[words.len() - 500..];
    let middle = &words[COMMON.len()..COMMON.len() + 500];
    let kinds: Vec<Kind<'_>> = vec![
        (
            "common word",
            Box::new(|rng| format!("content={}", COMMON[rng.random_range(0..5)])),
        ),
        (
            "rare word",
            Box::new(|rng| format!("content={}", tail[rng.random_range(0..tail.len())])),
        ),
        (
            "author",
            Box::new(|rng| format!("author_id={}", authors[rng.random_range(0..authors.len())])),
        ),
        ("has:file", Box::new(|_| "has=file".to_string())),
        (
            "word + author",
            Box::new(|rng| {
                format!(
                    "content={}&author_id={}",
                    middle[rng.random_range(0..middle.len())],
                    authors[rng.random_range(0..authors.len())]
                )
            }),
        ),
    ];
    let url = format!("{api}/guilds/{}/messages/search", world.guild_id);
    let mut rng = StdRng::seed_from_u64(42);
    for i in 0..WARM_UP {
        let (_, query) = &kinds[i % kinds.len()];
        search(client, &url, &world.token, &query(&mut rng)).await?;
    }
    println!(
        "searching guild-wide: {} of each kind, one at a time (p50 / p99 / max; mean total_results)",
        args.queries
    );
    let mut all = Vec::new();
    for (name, query) in &kinds {
        let mut latencies = Vec::with_capacity(args.queries);
        let mut totals = 0;
        for _ in 0..args.queries {
            let (took, total) = search(client, &url, &world.token, &query(&mut rng)).await?;
            latencies.push(took);
            totals += total;
        }
        print_line(
            name,
            &mut latencies,
            Some(totals as f64 / args.queries as f64),
        );
        all.extend(latencies);
    }
    print_line("all", &mut all, None);
    Ok(())
}

/// One search: its latency in ms and `total_results`.
async fn search(
    client: &awc::Client,
    url: &str,
    token: &str,
    query: &str,
) -> Result<(f64, u64), BoxError> {
    let started = Instant::now();
    let answer = rest::attempt(
        client,
        Method::GET,
        &format!("{url}?{query}"),
        Some(token),
        None,
    )
    .await?;
    let took = started.elapsed();
    match answer {
        Attempt::Done(StatusCode::OK, bytes) => {
            let results: Results = serde_json::from_slice(&bytes)?;
            Ok((ms(took), results.total_results))
        }
        Attempt::Done(status, bytes) => Err(format!(
            "search {query}: HTTP {}: {}",
            status.as_u16(),
            rest::snippet(&bytes)
        )
        .into()),
        Attempt::RateLimited(_) => {
            Err("rate limited (429): run the server with rate limits off".into())
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_line(name: &str, latencies: &mut [f64], mean_total: Option<f64>) {
    latencies.sort_by(f64::total_cmp);
    let at = |p| stats::nearest_rank(latencies, p).unwrap_or(f64::NAN);
    let total = mean_total.map_or(String::new(), |t| format!("; total_results {t:.0}"));
    println!(
        "  {name:<14} p50 {:6.1} ms, p99 {:6.1} ms, max {:6.1} ms{total}",
        at(50.0),
        at(99.0),
        at(100.0)
    );
}
