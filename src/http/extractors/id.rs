//! Typed ids from the path: `Id<path::Message>` is the `{message_id}` segment, parsed once
//! (a segment that is not a snowflake is Discord's 50035 naming it).

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::http::error::ApiError;
use crate::http::snowflake;

/// A kind of object a path names, and the segment that names it.
pub trait Segment {
    const NAME: &'static str;
}

/// The kinds of object paths name.
pub mod path {
    macro_rules! segments {
        ($($kind:ident = $name:literal,)*) => {
            $(
                #[doc = concat!("`{", $name, "}`")]
                pub enum $kind {}
                impl super::Segment for $kind {
                    const NAME: &'static str = $name;
                }
            )*
        };
    }

    segments! {
        Guild = "guild_id",
        Channel = "channel_id",
        Message = "message_id",
        User = "user_id",
        Role = "role_id",
        Webhook = "webhook_id",
        Application = "application_id",
        Command = "command_id",
        Emoji = "emoji_id",
        Sticker = "sticker_id",
        Overwrite = "overwrite_id",
    }
}

/// The id of a `K` the path names.
pub struct Id<K> {
    id: i64,
    kind: PhantomData<K>,
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Id<K> {}

impl<K> std::fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.id.fmt(f)
    }
}

impl<K> Id<K> {
    pub fn get(self) -> i64 {
        self.id
    }
}

impl<K: Segment> Id<K> {
    /// The id in `req`'s path.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let text = req.match_info().get(K::NAME).unwrap_or_default();
        Ok(Self {
            id: snowflake(K::NAME, text)?,
            kind: PhantomData,
        })
    }
}

impl<K: Segment> FromRequest for Id<K> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::of(req))
    }
}
