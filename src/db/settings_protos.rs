//! The `user_settings_protos` table: a user's settings protos of each kind (1 preloaded, 2
//! frecency), as the opaque base64 Discord's clients send and as Spacebar's JSON variant.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::schema::user_settings_protos as protos;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = protos, check_for_backend(diesel::pg::Pg))]
pub struct SettingsProto {
    pub user_id: i64,
    pub kind: i16,
    /// Base64, kept as sent; empty until the first PATCH.
    pub proto: String,
    /// A JSON object; empty until the first PATCH of the JSON variant.
    pub json: Value,
}

impl SettingsProto {
    /// The stored settings, or empty ones. `for_update` locks the row (a merge follows).
    pub async fn get(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        kind: i16,
        for_update: bool,
    ) -> QueryResult<Self> {
        let query = protos::table
            .find((user_id, kind))
            .select(Self::as_select());
        let found = if for_update {
            query.for_update().first(conn).await.optional()?
        } else {
            query.first(conn).await.optional()?
        };
        Ok(found.unwrap_or_else(|| Self {
            user_id,
            kind,
            proto: String::new(),
            json: Value::Object(Default::default()),
        }))
    }

    /// Stores `proto` alone (the JSON variant stays as it is).
    pub async fn save_proto(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(protos::table)
            .values(self)
            .on_conflict((protos::user_id, protos::kind))
            .do_update()
            .set(protos::proto.eq(&self.proto))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Stores `json` alone (the opaque proto stays as it is).
    pub async fn save_json(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(protos::table)
            .values(self)
            .on_conflict((protos::user_id, protos::kind))
            .do_update()
            .set(protos::json.eq(&self.json))
            .execute(conn)
            .await
            .map(drop)
    }
}
