//! `spacebar admin grant-operator <user>`: makes an account an operator from the command line,
//! so a fresh instance gets its first one (after that, operators grant rights through the admin
//! API).

use crate::db::users::{User, UserChanges};
use crate::db::{DbError, Pool};
use crate::rights;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("no account {0} (give a user id or username#discriminator)")]
    NoSuchUser(String),
}

impl From<diesel::result::Error> for GrantError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.into())
    }
}

/// Grants OPERATOR to the account `who` names (`1234567890` or `name#0001`); the account.
pub async fn grant_operator(pool: &Pool, who: &str) -> Result<User, GrantError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|error| DbError::Pool(error.to_string()))?;
    let found = match (who.parse::<i64>(), who.rsplit_once('#')) {
        (Ok(id), _) => User::find(&mut conn, id).await?,
        (Err(_), Some((name, discriminator))) => {
            User::find_by_tag(&mut conn, name, discriminator).await?
        }
        (Err(_), None) => None,
    };
    let user = found
        .filter(|user| !user.deleted)
        .ok_or_else(|| GrantError::NoSuchUser(who.to_string()))?;
    let changes = UserChanges {
        rights: Some(user.rights | 1i64 << rights::OPERATOR.bit),
        ..UserChanges::default()
    };
    Ok(User::update(&mut conn, user.id, &changes).await?)
}
