//! Telling the actors what happened, after the database committed it: an [`Event`] per
//! dispatch (`event`), the outbox that holds a change's events until its transaction commits
//! (`outbox`), and handing them to the actors. A dispatch is serialised once, and the same bytes
//! reach every session that may see it.

mod event;
mod outbox;

pub use event::without_content;
pub use event::{
    ChannelChange, ChannelScope, CommandChange, Ephemeral, Event, LargeGuild, MemberChange,
    MessageChange, RoleChange, Route, Scoped, ToUser,
};
pub use outbox::{Change, Writes};

use std::sync::Arc;

use spacebar_actors::guild::{Publish, SubscribeUser};
use spacebar_actors::registry::DispatchToUser;
use spacebar_actors::Tree;

/// Hands an event to the actors that deliver it: the one way out for every event (so it is
/// also where events will leave for other nodes).
pub fn deliver(tree: &Tree, event: &Event) {
    let dispatch = match event.dispatch() {
        Ok(dispatch) => Arc::new(dispatch),
        Err(error) => {
            tracing::error!(%error, event = %event.name(), "an event did not serialise");
            return;
        }
    };
    match event.route() {
        Route::Guild {
            guild_id,
            audience,
            changes,
            after,
            deleted,
        } => {
            tree.guilds.do_send(Publish {
                guild_id,
                changes,
                dispatch: Some((dispatch, audience)),
                deleted,
            });
            if !after.is_empty() {
                tree.guilds.do_send(Publish {
                    guild_id,
                    changes: after,
                    dispatch: None,
                    deleted: false,
                });
            }
        }
        Route::Users(users) => {
            for user_id in users {
                tree.sessions.do_send(DispatchToUser {
                    user_id,
                    dispatch: dispatch.clone(),
                });
            }
        }
        Route::Joiner { guild_id, user_id } => {
            // One message: the session registry has the joiner's sessions hear the guild and
            // lets GUILD_CREATE out once they do, so anything published after the joiner saw
            // GUILD_CREATE reaches them.
            tree.sessions.do_send(SubscribeUser {
                guild_id,
                user_id,
                dispatch,
            });
        }
        Route::Nobody => {}
    }
}
