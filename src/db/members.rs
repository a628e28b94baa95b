//! The `members` table: who is in which guild, with which roles.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{guilds, members, users};
use super::users::User;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = members, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Member {
    pub guild_id: i64,
    pub user_id: i64,
    pub nick: Option<String>,
    pub avatar: Option<String>,
    pub roles: Vec<i64>,
    pub joined_at: DateTime<Utc>,
    pub premium_since: Option<DateTime<Utc>>,
    pub deaf: bool,
    pub mute: bool,
    pub pending: bool,
    pub flags: i32,
    pub communication_disabled_until: Option<DateTime<Utc>>,
}

impl Member {
    /// Whether a timeout lasts now: the member may only read (see `permissions::TIMED_OUT`).
    pub fn timed_out(&self) -> bool {
        self.communication_disabled_until
            .is_some_and(|until| until > Utc::now())
    }

    pub fn new(guild_id: i64, user_id: i64) -> Self {
        Self {
            guild_id,
            user_id,
            nick: None,
            avatar: None,
            roles: Vec::new(),
            joined_at: Utc::now(),
            premium_since: None,
            deaf: false,
            mute: false,
            pending: false,
            flags: 0,
            communication_disabled_until: None,
        }
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<Option<Member>> {
        members::table
            .find((guild_id, user_id))
            .select(Member::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A member with their user.
    pub async fn find_with_user(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<Option<(Member, User)>> {
        members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq(guild_id))
            .filter(members::user_id.eq(user_id))
            .select((Member::as_select(), User::as_select()))
            .first(conn)
            .await
            .optional()
    }

    /// Members of a guild with their users, by user id after `after`, at most `limit`.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<(Member, User)>> {
        members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq(guild_id))
            .filter(members::user_id.gt(after))
            .order(members::user_id.asc())
            .limit(limit)
            .select((Member::as_select(), User::as_select()))
            .load(conn)
            .await
    }

    /// Members of a guild with their users whose username or nickname starts with `prefix`
    /// (ignoring case; an empty prefix matches everyone), by user id, at most `limit` of them
    /// (`None`: all).
    pub async fn with_name_prefix(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        prefix: &str,
        limit: Option<i64>,
    ) -> QueryResult<Vec<(Member, User)>> {
        let mut query = members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq(guild_id))
            .order(members::user_id.asc())
            .select((Member::as_select(), User::as_select()))
            .into_boxed();
        if !prefix.is_empty() {
            let pattern = format!("{}%", escape_like(prefix));
            query = query.filter(
                users::username
                    .ilike(pattern.clone())
                    .or(members::nick.ilike(pattern)),
            );
        }
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        query.load(conn).await
    }

    /// Those of `user_ids` who are members of a guild, with their users, by user id.
    pub async fn of_guild_by_ids(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_ids: &[i64],
    ) -> QueryResult<Vec<(Member, User)>> {
        members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq(guild_id))
            .filter(members::user_id.eq_any(user_ids))
            .order(members::user_id.asc())
            .select((Member::as_select(), User::as_select()))
            .load(conn)
            .await
    }

    /// Every membership of a user, and of those guilds' `others` when asked for.
    pub async fn of_user(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<Member>> {
        members::table
            .filter(members::user_id.eq(user_id))
            .select(Member::as_select())
            .load(conn)
            .await
    }

    /// The bot users among a guild's members.
    pub async fn bots_of_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<i64>> {
        members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq(guild_id))
            .filter(users::bot.eq(true))
            .select(members::user_id)
            .load(conn)
            .await
    }

    /// All members of the given guilds with their users (for small guilds' GUILD_CREATE), or
    /// only those of `among` (the members online, for large guilds').
    pub async fn of_guilds_with_users(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
        among: Option<&[i64]>,
    ) -> QueryResult<Vec<(Member, User)>> {
        let mut query = members::table
            .inner_join(users::table)
            .filter(members::guild_id.eq_any(guild_ids))
            .select((Member::as_select(), User::as_select()))
            .into_boxed();
        if let Some(user_ids) = among {
            query = query.filter(members::user_id.eq_any(user_ids));
        }
        query.load(conn).await
    }

    /// The users who are members of any of the given guilds, each once.
    pub async fn users_of_guilds(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<i64>> {
        members::table
            .filter(members::guild_id.eq_any(guild_ids))
            .select(members::user_id)
            .distinct()
            .load(conn)
            .await
    }

    /// Whether the two users are members of one guild at least.
    pub async fn share_a_guild(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        other_id: i64,
    ) -> QueryResult<bool> {
        let theirs: Vec<i64> = members::table
            .filter(members::user_id.eq(other_id))
            .select(members::guild_id)
            .load(conn)
            .await?;
        diesel::select(diesel::dsl::exists(
            members::table
                .filter(members::user_id.eq(user_id))
                .filter(members::guild_id.eq_any(theirs)),
        ))
        .get_result(conn)
        .await
    }

    /// (user id, role ids, timeout's end) of every member of a guild.
    pub async fn roles_of_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<(i64, Vec<i64>, Option<DateTime<Utc>>)>> {
        members::table
            .filter(members::guild_id.eq(guild_id))
            .select((
                members::user_id,
                members::roles,
                members::communication_disabled_until,
            ))
            .load(conn)
            .await
    }

    /// Member counts of several guilds (kept by a trigger on `members`, not counted here).
    pub async fn counts(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<(i64, i64)>> {
        guilds::table
            .filter(guilds::id.eq_any(guild_ids))
            .select((guilds::id, guilds::member_count))
            .load(conn)
            .await
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(members::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Inserts unless the user is already a member; whether they joined now.
    pub async fn insert_new(&self, conn: &mut AsyncPgConnection) -> QueryResult<bool> {
        diesel::insert_into(members::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// (user id, avatar hash) of the guild's members with a guild avatar.
    pub async fn avatars(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<(i64, String)>> {
        members::table
            .filter(members::guild_id.eq(guild_id))
            .filter(members::avatar.is_not_null())
            .select((members::user_id, members::avatar.assume_not_null()))
            .load(conn)
            .await
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(members::table.find((self.guild_id, self.user_id)))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Removes a membership; whether there was one.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(members::table.find((guild_id, user_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Gives a member one role, in one statement so concurrent changes are not lost. The
    /// member's roles afterwards, or `None` when they are not a member.
    pub async fn add_role(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
        role_id: i64,
    ) -> QueryResult<Option<Vec<i64>>> {
        use diesel::dsl::{array_append, array_remove};
        // Removing first keeps a role that is already there from appearing twice.
        diesel::update(members::table.find((guild_id, user_id)))
            .set(members::roles.eq(array_append(array_remove(members::roles, role_id), role_id)))
            .returning(members::roles)
            .get_result(conn)
            .await
            .optional()
    }

    /// Takes one role from a member, in one statement. The member's roles afterwards, or `None`
    /// when they are not a member.
    pub async fn remove_role(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
        role_id: i64,
    ) -> QueryResult<Option<Vec<i64>>> {
        diesel::update(members::table.find((guild_id, user_id)))
            .set(members::roles.eq(diesel::dsl::array_remove(members::roles, role_id)))
            .returning(members::roles)
            .get_result(conn)
            .await
            .optional()
    }

    /// Takes a deleted role off every member of its guild.
    pub async fn remove_role_everywhere(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        role_id: i64,
    ) -> QueryResult<()> {
        diesel::update(members::table.filter(members::guild_id.eq(guild_id)))
            .set(members::roles.eq(diesel::dsl::sql::<
                diesel::sql_types::Array<diesel::sql_types::Int8>,
            >(&format!("array_remove(roles, {role_id})"))))
            .execute(conn)
            .await
            .map(drop)
    }
}

/// `text` for a LIKE pattern, matching itself only: `%`, `_` and the escape `\` escaped.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(super::escape_like(r"a%b_c\d"), r"a\%b\_c\\d");
        assert_eq!(super::escape_like("plain"), "plain");
    }
}
