//! The `instance_bans` table: accounts and addresses banned from the whole instance.

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::instance_bans;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = instance_bans, check_for_backend(diesel::pg::Pg))]
pub struct InstanceBan {
    pub id: i64,
    pub user_id: Option<i64>,
    /// The address in its canonical text form (as [`IpAddr`] prints it).
    pub ip: Option<String>,
    pub reason: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl InstanceBan {
    /// Stores the ban; false when that account or address was already banned.
    pub async fn insert_new(&self, conn: &mut AsyncPgConnection) -> QueryResult<bool> {
        diesel::insert_into(instance_bans::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|inserted| inserted > 0)
    }

    /// Every ban, newest first.
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        instance_bans::table
            .order(instance_bans::id.desc())
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Deletes a ban; the ban that was deleted.
    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        diesel::delete(instance_bans::table.find(id))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// The banned addresses.
    pub async fn banned_ips(conn: &mut AsyncPgConnection) -> QueryResult<HashSet<IpAddr>> {
        let ips: Vec<Option<String>> = instance_bans::table
            .select(instance_bans::ip)
            .filter(instance_bans::ip.is_not_null())
            .load(conn)
            .await?;
        Ok(ips
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect())
    }
}
