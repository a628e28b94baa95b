//! Message search: the messages that match a search, over the `search_vector` column and its
//! GIN index (migration `2026-12-05-000040_message_search`: the content's words and marker
//! lexemes for the author, mentions, attachments, embeds, links and pins).
//!
//! The statements are written with their values in them (ids, and the text-search query as a
//! quoted literal) rather than bound: the best plan depends on the values (a word in every
//! third message is found by reading the guild's messages newest first until the page is full;
//! a rare word by the GIN index), and a literal gets a plan of its own every time, where a
//! bound parameter may be given a generic plan that suits neither.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::messages::{flags, Message};
use super::schema::messages;

/// `total_results` is exact up to this many matches; past it, PostgreSQL's estimate (never
/// below it). Counting exactly costs a heap visit per match, and a word in a third of a
/// million messages would cost 300,000 of them per search; Discord's own count is
/// approximate too.
pub const COUNTED: usize = 1_000;
/// Sorting by relevance ranks the newest this many matches (ranking every match of a common
/// word would read them all).
pub const RANKED: usize = 1_000;

/// How long one search's statements may take together before PostgreSQL cancels them: a
/// search that walks too much of the index gives up rather than hold a pooled connection.
const TIMEOUT_MS: u32 = 3_000;

/// Where to search.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Guild(i64),
    Channel(i64),
}

/// What a message must be to match.
#[derive(Debug, Clone)]
pub struct Filter {
    pub scope: Scope,
    /// Only in these channels; `None`: anywhere in the scope.
    pub channels: Option<Vec<i64>>,
    /// A text-search query (`tsquery`'s text form) the message's search vector must match.
    pub query: Option<String>,
    /// Only messages after `min_id` and before `max_id`.
    pub min_id: Option<i64>,
    pub max_id: Option<i64>,
}

/// The order of the matches.
#[derive(Debug, Clone)]
pub enum Order {
    Newest,
    Oldest,
    /// Most relevant to these words (a `tsquery`'s text) first, or last.
    Relevance {
        words: String,
        reversed: bool,
    },
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Lexeme {
    #[diesel(sql_type = Text)]
    lexeme: String,
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

impl Filter {
    /// The filter as SQL. Ephemeral messages were for one person's eyes, once: search never
    /// finds them.
    fn condition(&self) -> String {
        let mut parts = vec![format!("flags & {} = 0", flags::EPHEMERAL)];
        parts.push(match self.scope {
            Scope::Guild(id) => format!("guild_id = {id}"),
            Scope::Channel(id) => format!("channel_id = {id}"),
        });
        match self.channels.as_deref() {
            Some([]) => parts.push("FALSE".into()),
            Some(channels) => {
                let ids: Vec<String> = channels.iter().map(i64::to_string).collect();
                parts.push(format!("channel_id IN ({})", ids.join(", ")));
            }
            None => {}
        }
        if let Some(query) = &self.query {
            parts.push(format!("search_vector @@ {}::tsquery", literal(query)));
        }
        parts.extend(self.min_id.map(|id| format!("id > {id}")));
        parts.extend(self.max_id.map(|id| format!("id < {id}")));
        parts.join(" AND ")
    }
}

/// `text` as a SQL escape-string literal: backslashes and quotes doubled, which reads the same
/// whatever the server's `standard_conforming_strings` says.
fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The ids of the matches from `offset` on (at most `limit` of them, in `order`) and how many
/// there are in all (at most [`RANKED`] by relevance, as only those are ranked), both in one
/// transaction bounded by [`TIMEOUT_MS`]; `None` when the search took longer.
pub async fn find(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    order: &Order,
    offset: usize,
    limit: usize,
) -> QueryResult<Option<(Vec<i64>, usize)>> {
    let found = conn
        .transaction(async |conn| {
            diesel::sql_query(format!("SET LOCAL statement_timeout = {TIMEOUT_MS}"))
                .execute(conn)
                .await?;
            let ids = page(conn, filter, order, offset, limit).await?;
            let total = count(conn, filter).await?;
            Ok::<_, diesel::result::Error>((ids, total))
        })
        .await;
    match found {
        Ok((ids, total)) if matches!(order, Order::Relevance { .. }) => {
            Ok(Some((ids, total.min(RANKED))))
        }
        Ok(found) => Ok(Some(found)),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("statement timeout") =>
        {
            tracing::info!("a message search was cancelled after {TIMEOUT_MS} ms");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// The ids of the matches from `offset` on, at most `limit` of them, in `order`.
async fn page(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    order: &Order,
    offset: usize,
    limit: usize,
) -> QueryResult<Vec<i64>> {
    let condition = filter.condition();
    let sql = match order {
        Order::Newest | Order::Oldest => {
            let direction = if matches!(order, Order::Oldest) {
                "ASC"
            } else {
                "DESC"
            };
            format!(
                "SELECT id FROM messages WHERE {condition} \
                 ORDER BY id {direction} OFFSET {offset} LIMIT {limit}"
            )
        }
        Order::Relevance { words, reversed } => {
            let direction = if *reversed { "ASC" } else { "DESC" };
            format!(
                "SELECT id FROM (SELECT id, search_vector FROM messages WHERE {condition} \
                                 ORDER BY id DESC LIMIT {RANKED}) AS newest \
                 ORDER BY ts_rank_cd(search_vector, {}::tsquery) {direction}, id {direction} \
                 OFFSET {offset} LIMIT {limit}",
                literal(words)
            )
        }
    };
    let rows: Vec<Id> = diesel::sql_query(sql).load(conn).await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// How many messages match: exactly up to [`COUNTED`], else PostgreSQL's estimate.
async fn count(conn: &mut AsyncPgConnection, filter: &Filter) -> QueryResult<usize> {
    let condition = filter.condition();
    let counted: Count = diesel::sql_query(format!(
        "SELECT count(*) AS count FROM \
         (SELECT 1 FROM messages WHERE {condition} LIMIT {}) AS matches",
        COUNTED + 1
    ))
    .get_result(conn)
    .await?;
    let counted = usize::try_from(counted.count).unwrap_or(0);
    if counted <= COUNTED {
        return Ok(counted);
    }
    let plan: Plan = diesel::sql_query(format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE {condition}"
    ))
    .get_result(conn)
    .await?;
    Ok(estimated_rows(&plan.plan).unwrap_or(0).max(counted))
}

/// The rows the top node of an `EXPLAIN (FORMAT JSON)` expects.
fn estimated_rows(plan: &str) -> Option<usize> {
    let plan: serde_json::Value = serde_json::from_str(plan).ok()?;
    let rows = plan.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64()?;
    // A float from the planner; anything negative or absurd is no estimate.
    (rows.is_finite() && rows >= 0.0).then_some(rows as usize)
}

/// The words of `content` as PostgreSQL's parser reads them with the 'simple' configuration,
/// lower-cased as the index lower-cases them (each once, in order); none when it holds nothing
/// searchable (punctuation only).
pub async fn words(conn: &mut AsyncPgConnection, content: &str) -> QueryResult<Vec<String>> {
    let rows: Vec<Lexeme> = diesel::sql_query(
        "SELECT lexeme FROM ts_debug('simple', lower($1 COLLATE \"und-x-icu\")) AS token, \
                unnest(token.lexemes) AS lexeme \
         WHERE lexeme <> ''",
    )
    .bind::<Text, _>(content)
    .load(conn)
    .await?;
    let mut words: Vec<String> = Vec::new();
    for row in rows {
        if !words.contains(&row.lexeme) {
            words.push(row.lexeme);
        }
    }
    Ok(words)
}

/// The messages `ids`, wherever they are (in no particular order).
pub async fn messages(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<Message>> {
    messages::table
        .filter(messages::id.eq_any(ids))
        .select(Message::as_select())
        .load(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_in_with_quotes_and_backslashes_doubled() {
        let filter = Filter {
            scope: Scope::Guild(7),
            channels: Some(vec![1, 2]),
            query: Some("'it''s':* & ' a\\5'".into()),
            min_id: Some(3),
            max_id: None,
        };
        assert_eq!(
            filter.condition(),
            "flags & 64 = 0 AND guild_id = 7 AND channel_id IN (1, 2) AND \
             search_vector @@ E'''it''''s'':* & '' a\\\\5'''::tsquery AND id > 3"
        );
    }

    #[test]
    fn the_estimate_is_read_from_the_plan() {
        let plan = r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 289890}}]"#;
        assert_eq!(estimated_rows(plan), Some(289_890));
        assert_eq!(estimated_rows("[]"), None);
    }
}
