//! The `pending_uploads` table: pre-uploaded files waiting for the message that names them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::pending_uploads;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pending_uploads, check_for_backend(diesel::pg::Pg))]
pub struct PendingUpload {
    pub token: String,
    pub channel_id: i64,
    pub user_id: i64,
    pub filename: String,
    pub size: i64,
    pub uploaded: bool,
    pub created_at: DateTime<Utc>,
}

impl PendingUpload {
    pub async fn insert_all(
        conn: &mut AsyncPgConnection,
        uploads: &[PendingUpload],
    ) -> QueryResult<()> {
        diesel::insert_into(pending_uploads::table)
            .values(uploads)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// The upload `token` if it was made after `since`.
    pub async fn find(
        conn: &mut AsyncPgConnection,
        token: &str,
        since: DateTime<Utc>,
    ) -> QueryResult<Option<PendingUpload>> {
        pending_uploads::table
            .find(token)
            .filter(pending_uploads::created_at.gt(since))
            .select(PendingUpload::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Records that the file arrived; false when it had already (an upload is written once).
    pub async fn mark_uploaded(
        conn: &mut AsyncPgConnection,
        token: &str,
        size: i64,
    ) -> QueryResult<bool> {
        diesel::update(
            pending_uploads::table
                .find(token)
                .filter(pending_uploads::uploaded.eq(false)),
        )
        .set((
            pending_uploads::uploaded.eq(true),
            pending_uploads::size.eq(size),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
    }

    /// Takes the caller's uploaded file `token` for a message in `channel_id` (the row goes).
    pub async fn take(
        conn: &mut AsyncPgConnection,
        token: &str,
        user_id: i64,
        channel_id: i64,
        since: DateTime<Utc>,
    ) -> QueryResult<Option<PendingUpload>> {
        diesel::delete(
            pending_uploads::table
                .find(token)
                .filter(pending_uploads::user_id.eq(user_id))
                .filter(pending_uploads::channel_id.eq(channel_id))
                .filter(pending_uploads::uploaded.eq(true))
                .filter(pending_uploads::created_at.gt(since)),
        )
        .returning(PendingUpload::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes the caller's upload `token`, returning it.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        token: &str,
        user_id: i64,
    ) -> QueryResult<Option<PendingUpload>> {
        diesel::delete(
            pending_uploads::table
                .find(token)
                .filter(pending_uploads::user_id.eq(user_id)),
        )
        .returning(PendingUpload::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes the user's uploads made before `before`, returning them (their files go next).
    pub async fn delete_expired(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        before: DateTime<Utc>,
    ) -> QueryResult<Vec<PendingUpload>> {
        diesel::delete(
            pending_uploads::table
                .filter(pending_uploads::user_id.eq(user_id))
                .filter(pending_uploads::created_at.le(before)),
        )
        .returning(PendingUpload::as_returning())
        .get_results(conn)
        .await
    }
}
