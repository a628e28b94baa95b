//! The `messages` table: a channel's history, its pins, and who a message may mention.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::channels::Channel;
use super::read_states::ReadState;
use super::schema::{channel_recipients, channels, members, messages, users};
use super::users::User;

/// Discord's message types used here.
pub mod kind {
    pub const DEFAULT: i32 = 0;
    pub const CHANNEL_PINNED_MESSAGE: i32 = 6;
    pub const REPLY: i32 = 19;
    /// An application's answer to a slash command, and to a user or message command.
    pub const CHAT_INPUT_COMMAND: i32 = 20;
    pub const CONTEXT_MENU_COMMAND: i32 = 23;

    /// System messages (pins, joins, boosts …) cannot be edited or pinned.
    pub fn is_system(kind: i32) -> bool {
        !matches!(
            kind,
            DEFAULT | REPLY | CHAT_INPUT_COMMAND | CONTEXT_MENU_COMMAND
        )
    }
}

/// Message flags clients may set themselves.
pub mod flags {
    pub const SUPPRESS_EMBEDS: i32 = 1 << 2;
    pub const SUPPRESS_NOTIFICATIONS: i32 = 1 << 12;
    /// Seen only by the person who invoked the interaction it answers.
    pub const EPHEMERAL: i32 = 1 << 6;
    /// An interaction's deferred answer, still "thinking".
    pub const LOADING: i32 = 1 << 7;
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct Message {
    pub id: i64,
    pub channel_id: i64,
    pub guild_id: Option<i64>,
    /// The user who wrote it; `None` for a webhook's message.
    pub author_id: Option<i64>,
    pub content: String,
    pub kind: i32,
    pub tts: bool,
    pub mention_everyone: bool,
    pub mentions: Vec<i64>,
    pub mention_roles: Vec<i64>,
    pub embeds: serde_json::Value,
    pub attachments: serde_json::Value,
    pub components: serde_json::Value,
    /// `{message_id, channel_id, guild_id}` (snowflakes as strings) for replies and pins.
    pub message_reference: Option<serde_json::Value>,
    pub flags: i32,
    pub pinned: bool,
    pub edited_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The interaction this message answers or follows up, and what clients show of it.
    pub interaction_id: Option<i64>,
    pub interaction_metadata: Option<serde_json::Value>,
    /// The webhook that sent it, with the name and avatar hash it was sent under.
    pub webhook_id: Option<i64>,
    pub webhook_name: Option<String>,
    pub webhook_avatar: Option<String>,
}

/// What an edit may change. Kept apart from the row so an edit never writes `pinned` back
/// over a pin made in the meantime.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = messages, treat_none_as_null = true)]
pub struct MessageEdit {
    pub content: String,
    pub embeds: serde_json::Value,
    pub mentions: Vec<i64>,
    pub mention_roles: Vec<i64>,
    pub mention_everyone: bool,
    pub flags: i32,
    pub components: serde_json::Value,
    pub attachments: serde_json::Value,
    pub edited_at: Option<DateTime<Utc>>,
}

/// Which part of a channel's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Latest,
    Before(i64),
    After(i64),
    /// The message itself (if it exists) with as many older and newer ones around it.
    Around(i64),
}

impl Message {
    /// A message in `channel_id` with Discord's defaults.
    pub fn new(id: i64, channel_id: i64, guild_id: Option<i64>, author_id: i64) -> Self {
        Self {
            id,
            channel_id,
            guild_id,
            author_id: Some(author_id),
            content: String::new(),
            kind: kind::DEFAULT,
            tts: false,
            mention_everyone: false,
            mentions: Vec::new(),
            mention_roles: Vec::new(),
            embeds: serde_json::Value::Array(Vec::new()),
            attachments: serde_json::Value::Array(Vec::new()),
            components: serde_json::Value::Array(Vec::new()),
            message_reference: None,
            flags: 0,
            pinned: false,
            edited_at: None,
            created_at: crate::snowflake::timestamp(id),
            interaction_id: None,
            interaction_metadata: None,
            webhook_id: None,
            webhook_name: None,
            webhook_avatar: None,
        }
    }

    /// A message sent by a webhook as `name` with `avatar` (a hash of the webhook's avatars).
    pub fn new_by_webhook(
        id: i64,
        channel_id: i64,
        guild_id: Option<i64>,
        webhook_id: i64,
        name: String,
        avatar: Option<String>,
    ) -> Self {
        Self {
            author_id: None,
            webhook_id: Some(webhook_id),
            webhook_name: Some(name),
            webhook_avatar: avatar,
            ..Self::new(id, channel_id, guild_id, 0)
        }
    }

    /// Who the message is by, as its events name them: the user, or the webhook.
    pub fn author_or_webhook(&self) -> Option<i64> {
        self.author_id.or(self.webhook_id)
    }

    /// The message `id` if it is in `channel_id`.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        id: i64,
    ) -> QueryResult<Option<Message>> {
        messages::table
            .find(id)
            .filter(messages::channel_id.eq(channel_id))
            .select(Message::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The message `id` if it is in `channel_id`'s history. An ephemeral message never is: it
    /// was for its invoker's eyes, and only the application that sent it reaches it again (by
    /// its interaction's token); fetching, replying, reacting and pinning see none.
    pub async fn find_in_history(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        id: i64,
    ) -> QueryResult<Option<Message>> {
        Ok(Self::find(conn, channel_id, id)
            .await?
            .filter(|m| m.flags & flags::EPHEMERAL == 0))
    }

    /// Whether `user_id` sees this message: an ephemeral one only the user it answered does.
    pub fn shown_to(&self, user_id: i64) -> bool {
        self.flags & flags::EPHEMERAL == 0
            || self
                .interaction_metadata
                .as_ref()
                .and_then(|m| m["user"]["id"].as_str())
                .is_some_and(|invoker| invoker == user_id.to_string())
    }

    /// The message `id` if `webhook_id` sent it (wherever the webhook has moved since).
    pub async fn find_by_webhook(
        conn: &mut AsyncPgConnection,
        webhook_id: i64,
        id: i64,
    ) -> QueryResult<Option<Message>> {
        messages::table
            .find(id)
            .filter(messages::webhook_id.eq(webhook_id))
            .select(Message::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Those of `ids` that are in one of `channel_ids`.
    pub async fn find_many(
        conn: &mut AsyncPgConnection,
        channel_ids: &[i64],
        ids: &[i64],
    ) -> QueryResult<Vec<Message>> {
        messages::table
            .filter(messages::channel_id.eq_any(channel_ids))
            .filter(messages::id.eq_any(ids))
            .select(Message::as_select())
            .load(conn)
            .await
    }

    /// Up to `limit` messages of a channel, newest first.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        page: Page,
        limit: i64,
    ) -> QueryResult<Vec<Message>> {
        // Ephemeral messages were for one person's eyes, once: history never shows them.
        let shown = format!("messages.flags & {} = 0", flags::EPHEMERAL);
        let history = || {
            messages::table
                .filter(messages::channel_id.eq(channel_id))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&shown))
                .select(Message::as_select())
                .into_boxed()
        };
        match page {
            Page::Latest => {
                history()
                    .order(messages::id.desc())
                    .limit(limit)
                    .load(conn)
                    .await
            }
            Page::Before(before) => {
                history()
                    .filter(messages::id.lt(before))
                    .order(messages::id.desc())
                    .limit(limit)
                    .load(conn)
                    .await
            }
            Page::After(after) => {
                // The `limit` messages right after `after`, then newest first like the rest.
                let mut newer: Vec<Message> = history()
                    .filter(messages::id.gt(after))
                    .order(messages::id.asc())
                    .limit(limit)
                    .load(conn)
                    .await?;
                newer.reverse();
                Ok(newer)
            }
            Page::Around(around) => {
                // Discord's split: the older half below, the rest from the message upwards.
                let older_count = limit / 2;
                let mut newer: Vec<Message> = history()
                    .filter(messages::id.ge(around))
                    .order(messages::id.asc())
                    .limit(limit - older_count)
                    .load(conn)
                    .await?;
                let older: Vec<Message> = history()
                    .filter(messages::id.lt(around))
                    .order(messages::id.desc())
                    .limit(older_count)
                    .load(conn)
                    .await?;
                newer.reverse();
                newer.extend(older);
                Ok(newer)
            }
        }
    }

    /// Inserts a message `sender` just sent, makes it its channel's last and reads the channel
    /// up to it for them: one statement, so all of it or nothing is written without a
    /// transaction's BEGIN and COMMIT.
    pub async fn insert_sent(&self, conn: &mut AsyncPgConnection, sender: i64) -> QueryResult<()> {
        Together(
            diesel::insert_into(messages::table).values(self),
            Channel::last_message_update(self.channel_id, self.id),
            ReadState::ack_upsert(sender, self.channel_id, self.id),
        )
        .execute(conn)
        .await
        .map(drop)
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(messages::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn edit(
        conn: &mut AsyncPgConnection,
        id: i64,
        edit: &MessageEdit,
    ) -> QueryResult<()> {
        diesel::update(messages::table.find(id))
            .set(edit)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Deletes one message of a channel; whether it was there.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(
            messages::table
                .find(id)
                .filter(messages::channel_id.eq(channel_id)),
        )
        .execute(conn)
        .await
        .map(|n| n > 0)
    }

    /// Deletes those of `ids` that are in `channel_id`; the ids that were, with their
    /// attachments (whose files go next).
    pub async fn delete_many(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        ids: &[i64],
    ) -> QueryResult<Vec<(i64, serde_json::Value)>> {
        diesel::delete(
            messages::table
                .filter(messages::channel_id.eq(channel_id))
                .filter(messages::id.eq_any(ids)),
        )
        .returning((messages::id, messages::attachments))
        .get_results(conn)
        .await
    }

    /// Up to `limit` messages of an author: (id, channel id, guild id).
    pub async fn batch_by_author(
        conn: &mut AsyncPgConnection,
        author_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<(i64, i64, Option<i64>)>> {
        messages::table
            .filter(messages::author_id.eq(author_id))
            .select((messages::id, messages::channel_id, messages::guild_id))
            .limit(limit)
            .load(conn)
            .await
    }

    /// (channel id, attachments) of a channel's messages that have files (to remove them with it).
    pub async fn attachments_in_channel(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
    ) -> QueryResult<Vec<(i64, serde_json::Value)>> {
        messages::table
            .filter(messages::channel_id.eq(channel_id))
            .filter(messages::attachments.ne(serde_json::json!([])))
            .select((messages::channel_id, messages::attachments))
            .load(conn)
            .await
    }

    /// Up to `limit` message ids of a guild.
    pub async fn batch_of_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        limit: i64,
    ) -> QueryResult<Vec<i64>> {
        messages::table
            .filter(messages::guild_id.eq(guild_id))
            .select(messages::id)
            .limit(limit)
            .load(conn)
            .await
    }

    /// (channel id, attachments) of a guild's messages that have files.
    pub async fn attachments_in_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<(i64, serde_json::Value)>> {
        messages::table
            .filter(messages::guild_id.eq(guild_id))
            .filter(messages::attachments.ne(serde_json::json!([])))
            .select((messages::channel_id, messages::attachments))
            .load(conn)
            .await
    }

    /// Deletes these messages, wherever they are; (channel id, attachments) of each that was.
    pub async fn delete_ids(
        conn: &mut AsyncPgConnection,
        ids: &[i64],
    ) -> QueryResult<Vec<(i64, serde_json::Value)>> {
        diesel::delete(messages::table.filter(messages::id.eq_any(ids)))
            .returning((messages::channel_id, messages::attachments))
            .get_results(conn)
            .await
    }

    /// The pinned messages of a channel.
    pub async fn pinned(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
    ) -> QueryResult<Vec<Message>> {
        messages::table
            .filter(messages::channel_id.eq(channel_id))
            .filter(messages::pinned.eq(true))
            .select(Message::as_select())
            .load(conn)
            .await
    }

    pub async fn count_pinned(conn: &mut AsyncPgConnection, channel_id: i64) -> QueryResult<i64> {
        messages::table
            .filter(messages::channel_id.eq(channel_id))
            .filter(messages::pinned.eq(true))
            .count()
            .get_result(conn)
            .await
    }

    /// Pins or unpins a message; whether that changed anything.
    pub async fn set_pinned(
        conn: &mut AsyncPgConnection,
        id: i64,
        pinned: bool,
    ) -> QueryResult<bool> {
        diesel::update(messages::table.find(id).filter(messages::pinned.ne(pinned)))
            .set(messages::pinned.eq(pinned))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// When each of the pinned messages `ids` was pinned, from the newest CHANNEL_PINNED_MESSAGE
    /// system message naming it (the table keeps no pin time of its own). Messages whose system
    /// message was deleted are missing from the answer.
    pub async fn pin_times(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        ids: &[i64],
    ) -> QueryResult<HashMap<i64, DateTime<Utc>>> {
        let pinned_id = || diesel::dsl::sql::<Nullable<Text>>("message_reference->>'message_id'");
        let names: Vec<String> = ids.iter().map(i64::to_string).collect();
        let notices: Vec<(Option<String>, i64)> = messages::table
            .filter(messages::channel_id.eq(channel_id))
            .filter(messages::kind.eq(kind::CHANNEL_PINNED_MESSAGE))
            .filter(pinned_id().eq_any(names))
            .select((pinned_id(), messages::id))
            .load(conn)
            .await?;
        let mut times = HashMap::new();
        for (target, notice) in notices {
            let Some(target) = target.and_then(|t| t.parse::<i64>().ok()) else {
                continue;
            };
            let at = crate::snowflake::timestamp(notice);
            times
                .entry(target)
                .and_modify(|t: &mut DateTime<Utc>| *t = (*t).max(at))
                .or_insert(at);
        }
        Ok(times)
    }

    /// Records a channel's newest pin time. It lives on the channel row, but only pins change it,
    /// so it is written here, next to them, in the same transaction.
    pub async fn set_last_pin_timestamp(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        at: Option<DateTime<Utc>>,
    ) -> QueryResult<()> {
        diesel::update(channels::table.find(channel_id))
            .set(channels::last_pin_timestamp.eq(at))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Those of `user_ids` a message in the channel may mention: members of its guild, or
    /// recipients of a DM.
    pub async fn mentionable(
        conn: &mut AsyncPgConnection,
        guild_id: Option<i64>,
        channel_id: i64,
        user_ids: &[i64],
    ) -> QueryResult<Vec<User>> {
        match guild_id {
            Some(guild_id) => {
                members::table
                    .inner_join(users::table)
                    .filter(members::guild_id.eq(guild_id))
                    .filter(members::user_id.eq_any(user_ids))
                    .select(User::as_select())
                    .load(conn)
                    .await
            }
            None => {
                channel_recipients::table
                    .inner_join(users::table)
                    .filter(channel_recipients::channel_id.eq(channel_id))
                    .filter(channel_recipients::user_id.eq_any(user_ids))
                    .select(User::as_select())
                    .load(conn)
                    .await
            }
        }
    }
}

/// Three writes as one statement: the first two as data-modifying parts of a `WITH`, which
/// PostgreSQL runs with the third, atomically.
struct Together<A, B, C>(A, B, C);

impl<A, B, C> QueryFragment<Pg> for Together<A, B, C>
where
    A: QueryFragment<Pg>,
    B: QueryFragment<Pg>,
    C: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH first AS (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql("), second AS (");
        self.1.walk_ast(out.reborrow())?;
        out.push_sql(") ");
        self.2.walk_ast(out.reborrow())
    }
}

impl<A, B, C> QueryId for Together<A, B, C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
