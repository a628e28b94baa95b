//! The `read_states` table: how far each user has read each channel.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::read_states;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = read_states, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct ReadState {
    pub user_id: i64,
    pub channel_id: i64,
    pub last_message_id: Option<i64>,
    pub mention_count: i32,
}

impl ReadState {
    pub async fn of_user(
        conn: &mut AsyncPgConnection,
        user_id: i64,
    ) -> QueryResult<Vec<ReadState>> {
        read_states::table
            .filter(read_states::user_id.eq(user_id))
            .select(ReadState::as_select())
            .load(conn)
            .await
    }

    /// Marks `channel_id` read up to `message_id`, clearing mentions.
    pub async fn ack(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        channel_id: i64,
        message_id: i64,
    ) -> QueryResult<()> {
        Self::ack_upsert(user_id, channel_id, message_id)
            .execute(conn)
            .await
            .map(drop)
    }

    /// The INSERT [`ReadState::ack`] runs, to run with others as one statement.
    pub fn ack_upsert(user_id: i64, channel_id: i64, message_id: i64) -> impl super::Statement {
        let state = ReadState {
            user_id,
            channel_id,
            last_message_id: Some(message_id),
            mention_count: 0,
        };
        diesel::insert_into(read_states::table)
            .values(state.clone())
            .on_conflict((read_states::user_id, read_states::channel_id))
            .do_update()
            .set(state)
    }
}
