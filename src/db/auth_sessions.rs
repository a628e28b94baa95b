//! The `auth_sessions` table: one row per issued login token.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::auth_sessions;

pub async fn create(conn: &mut AsyncPgConnection, id: i64, user_id: i64) -> QueryResult<()> {
    diesel::insert_into(auth_sessions::table)
        .values((auth_sessions::id.eq(id), auth_sessions::user_id.eq(user_id)))
        .execute(conn)
        .await
        .map(drop)
}

/// Ends one login session (logout).
pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(auth_sessions::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Ends every login session of `user_id` (a password change); returns how many ended.
pub async fn delete_all(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(auth_sessions::table.filter(auth_sessions::user_id.eq(user_id)))
        .execute(conn)
        .await
}
