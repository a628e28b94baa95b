//! The live rooms' [`RoomDirectory`], over the `rooms` table: a room a token names is started
//! with the settings the API stored (an unknown one, with the defaults, unless a guest asks).

use std::time::Duration;

use futures_util::future::BoxFuture;
use spacebar_actors::rooms::api::{RoomDirectory, RoomError, RoomSettings};

use crate::db::rooms::Room;
use crate::db::Pool;

pub struct DbRoomDirectory {
    pub pool: Pool,
}

/// What the room actors need of a stored room.
pub fn settings(room: &Room) -> RoomSettings {
    RoomSettings {
        name: room.name.clone(),
        max_participants: u32::try_from(room.max_participants).unwrap_or(0),
        empty_timeout: Duration::from_secs(u64::try_from(room.empty_timeout_secs).unwrap_or(0)),
        metadata: room.metadata.clone(),
    }
}

impl RoomDirectory for DbRoomDirectory {
    fn lookup(&self, room: &str) -> BoxFuture<'static, Result<Option<RoomSettings>, RoomError>> {
        let pool = self.pool.clone();
        let room = room.to_string();
        Box::pin(async move {
            let failed = |error: String| RoomError::Directory(error);
            let mut conn = pool.get().await.map_err(|e| failed(e.to_string()))?;
            let found = Room::find(&mut conn, &room)
                .await
                .map_err(|e| failed(e.to_string()))?;
            Ok(found.as_ref().map(settings))
        })
    }
}
