//! The `auth_sessions` table: one row per issued login token.

use chrono::{DateTime, Utc};
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

/// What clients call a login session: the SHA-256 of its id, in hex (READY's
/// `auth_session_id_hash`, `/auth/sessions`' `id_hash`).
pub fn id_hash(id: i64) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(id.to_string()))
}

/// The user's login sessions, oldest first: (id, when it began).
pub async fn of_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<(i64, DateTime<Utc>)>> {
    auth_sessions::table
        .filter(auth_sessions::user_id.eq(user_id))
        .order(auth_sessions::id.asc())
        .select((auth_sessions::id, auth_sessions::created_at))
        .load(conn)
        .await
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
