//! The `audit_log_entries` table: a guild's moderation and configuration history.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::schema::audit_log_entries;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log_entries, check_for_backend(diesel::pg::Pg))]
pub struct AuditLogEntry {
    pub id: i64,
    pub guild_id: i64,
    pub user_id: Option<i64>,
    pub target_id: Option<i64>,
    pub action_type: i32,
    /// `[{key, old_value?, new_value?}]`.
    pub changes: Value,
    pub options: Option<Value>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a page of the log is narrowed to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filter {
    pub user_id: Option<i64>,
    pub action_type: Option<i32>,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

impl AuditLogEntry {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(audit_log_entries::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Up to `limit` entries of a guild matching `filter`, newest first.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        filter: Filter,
        limit: i64,
    ) -> QueryResult<Vec<AuditLogEntry>> {
        let mut query = audit_log_entries::table
            .filter(audit_log_entries::guild_id.eq(guild_id))
            .select(AuditLogEntry::as_select())
            .into_boxed();
        if let Some(user_id) = filter.user_id {
            query = query.filter(audit_log_entries::user_id.eq(user_id));
        }
        if let Some(action_type) = filter.action_type {
            query = query.filter(audit_log_entries::action_type.eq(action_type));
        }
        if let Some(before) = filter.before {
            query = query.filter(audit_log_entries::id.lt(before));
        }
        if let Some(after) = filter.after {
            query = query.filter(audit_log_entries::id.gt(after));
        }
        query
            .order(audit_log_entries::id.desc())
            .limit(limit)
            .load(conn)
            .await
    }
}
