//! The `registration_tokens` table: one-time tokens that let someone register while
//! registration is closed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::registration_tokens;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registration_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RegistrationToken {
    pub token: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl RegistrationToken {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(registration_tokens::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Every token, newest first.
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        registration_tokens::table
            .order(registration_tokens::created_at.desc())
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Deletes a token; whether it existed.
    pub async fn revoke(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<bool> {
        diesel::delete(registration_tokens::table.find(token))
            .execute(conn)
            .await
            .map(|deleted| deleted > 0)
    }

    /// Uses up a token that has not expired; whether there was one. Run it in the transaction
    /// that creates the account, so a failed registration keeps the token.
    pub async fn consume(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<bool> {
        diesel::delete(
            registration_tokens::table.find(token).filter(
                registration_tokens::expires_at
                    .is_null()
                    .or(registration_tokens::expires_at.gt(diesel::dsl::now)),
            ),
        )
        .execute(conn)
        .await
        .map(|deleted| deleted > 0)
    }
}
