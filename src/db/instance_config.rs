//! The `instance_config` table: configuration keys operators set through the admin API, laid
//! over the file and the environment at every start.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};

use super::schema::instance_config;

pub struct StoredKey;

impl StoredKey {
    /// Every stored key with its value.
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Map<String, Value>> {
        let rows: Vec<(String, Value)> = instance_config::table
            .select((instance_config::key, instance_config::value))
            .load(conn)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Stores `changes`, all or none.
    pub async fn save(
        conn: &mut AsyncPgConnection,
        changes: &Map<String, Value>,
    ) -> QueryResult<()> {
        let rows: Vec<_> = changes
            .iter()
            .map(|(key, value)| {
                (
                    instance_config::key.eq(key),
                    instance_config::value.eq(value),
                )
            })
            .collect();
        conn.transaction(async |conn| {
            diesel::insert_into(instance_config::table)
                .values(&rows)
                .on_conflict(instance_config::key)
                .do_update()
                .set((
                    instance_config::value.eq(excluded(instance_config::value)),
                    instance_config::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await
                .map(drop)
        })
        .await
    }
}
