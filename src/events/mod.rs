//! Telling the actors what happened, after the database committed it: an [`Event`] per
//! dispatch (`event`), the outbox that holds a change's events until its transaction commits
//! (`outbox`), and handing them to the actors. A dispatch is serialised once, and the same bytes
//! reach every session that may see it.

mod event;
mod outbox;

pub use event::{
    ChannelChange, ChannelScope, CommandChange, Ephemeral, Event, MemberChange, MessageChange,
    RoleChange, Route, Scoped, ToUser,
};
pub use outbox::{Change, Writes};

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use spacebar_actors::guild::voice::{
    GetVoiceState, GetVoiceStates, UpdateVoice, VoiceChange, VoiceError,
};
use spacebar_actors::guild::{Audience, Publish, StateChange, SubscribeUser};
use spacebar_actors::registry::{DispatchToUser, Friendship, LoginsEnded};
use spacebar_actors::{Dispatch, EventName};

use crate::http::error::ApiError;
use crate::server::AppState;

impl AppState {
    /// Hands an event to the actors that deliver it. The one way out for every event, so it is
    /// also where it will leave for other nodes.
    pub fn publish(&self, event: &Event) {
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
                self.tree.guilds.do_send(Publish {
                    guild_id,
                    changes,
                    dispatch: Some((dispatch, audience)),
                    deleted,
                });
                if !after.is_empty() {
                    self.guild_changed(guild_id, after);
                }
            }
            Route::Users(users) => {
                for user_id in users {
                    self.tree.sessions.do_send(DispatchToUser {
                        user_id,
                        dispatch: dispatch.clone(),
                    });
                }
            }
            Route::Joiner { guild_id, user_id } => {
                // Subscribing first: the session registry then asks the guild to deliver before
                // it hands over GUILD_CREATE, so anything published after the joiner saw
                // GUILD_CREATE reaches them.
                self.tree
                    .sessions
                    .do_send(SubscribeUser { guild_id, user_id });
                self.tree
                    .sessions
                    .do_send(DispatchToUser { user_id, dispatch });
            }
            Route::Nobody => {}
        }
    }

    /// An event in a guild for `audience`, after applying `changes` to the guild actor's state.
    pub fn guild_event<T: Serialize>(
        &self,
        guild_id: i64,
        event: EventName,
        data: &T,
        audience: Audience,
        changes: Vec<StateChange>,
    ) -> Result<(), ApiError> {
        let dispatch = Dispatch::json(event, data)?;
        self.guild_dispatch(guild_id, dispatch, audience, changes);
        Ok(())
    }

    /// [`AppState::guild_event`] with a dispatch already made (one about some users, or with
    /// a copy without message content).
    pub fn guild_dispatch(
        &self,
        guild_id: i64,
        dispatch: Dispatch,
        audience: Audience,
        changes: Vec<StateChange>,
    ) {
        self.tree.guilds.do_send(Publish {
            guild_id,
            changes,
            dispatch: Some((Arc::new(dispatch.in_guild(guild_id)), audience)),
            deleted: false,
        });
    }

    /// Changes to a guild actor's state with no event to deliver.
    pub fn guild_changed(&self, guild_id: i64, changes: Vec<StateChange>) {
        self.tree.guilds.do_send(Publish {
            guild_id,
            changes,
            dispatch: None,
            deleted: false,
        });
    }

    /// The guild is gone: its members hear `GUILD_DELETE` and its actor lets them go.
    pub fn guild_deleted(&self, guild_id: i64) -> Result<(), ApiError> {
        let data = serde_json::json!({ "id": guild_id.to_string(), "unavailable": false });
        self.tree.guilds.do_send(Publish {
            guild_id,
            changes: Vec::new(),
            dispatch: Some((
                Arc::new(Dispatch::json(EventName::GuildDelete, &data)?.in_guild(guild_id)),
                Audience::Guild,
            )),
            deleted: true,
        });
        Ok(())
    }

    /// An event of no guild for every session of one user (DMs, relationships, their account);
    /// a guild's events for one user go through [`AppState::user_guild_event`].
    pub fn user_event<T: Serialize>(
        &self,
        user_id: i64,
        event: EventName,
        data: &T,
    ) -> Result<(), ApiError> {
        self.tree.sessions.do_send(DispatchToUser {
            user_id,
            dispatch: Dispatch::new(event, data)?,
        });
        Ok(())
    }

    /// An event of one guild for every session of one user (GUILD_CREATE when they join,
    /// GUILD_DELETE when they leave): only their sessions of that guild's shard hear it.
    pub fn user_guild_event<T: Serialize>(
        &self,
        user_id: i64,
        guild_id: i64,
        event: EventName,
        data: &T,
    ) -> Result<(), ApiError> {
        self.user_dispatch(user_id, Dispatch::json(event, data)?.in_guild(guild_id));
        Ok(())
    }

    /// A dispatch already made for every session of one user (a GUILD_CREATE in both shapes).
    pub fn user_dispatch(&self, user_id: i64, dispatch: Dispatch) {
        self.tree.sessions.do_send(DispatchToUser {
            user_id,
            dispatch: Arc::new(dispatch),
        });
    }

    /// Logins ended: the gateway sessions opened with them close with 4004. `login_id: None`
    /// ends every login of the user but `keep`.
    pub fn logins_ended(&self, user_id: i64, login_id: Option<i64>, keep: Option<i64>) {
        self.tree.sessions.do_send(LoginsEnded {
            user_id,
            login_id,
            keep,
        });
    }

    /// Two users became friends, or stopped being friends: whether each hears the other's
    /// presence (sent after the RELATIONSHIP_* events already told).
    pub fn friendship(&self, a: i64, b: i64, friends: bool) {
        self.tree.sessions.do_send(Friendship {
            users: [a, b],
            friends,
        });
    }

    /// A member's voice state in a guild, if they are in voice there (the guild's actor holds
    /// voice states; the database never sees them).
    pub async fn voice_state(
        &self,
        guild_id: i64,
        user_id: i64,
    ) -> Result<Option<Value>, ApiError> {
        self.tree
            .guilds
            .send(GetVoiceState { guild_id, user_id })
            .await
            .map_err(ApiError::internal)
    }

    /// Everyone in voice in a guild.
    pub async fn voice_states(&self, guild_id: i64) -> Result<Vec<Value>, ApiError> {
        let mut found = self
            .tree
            .guilds
            .send(GetVoiceStates {
                guild_ids: vec![guild_id],
            })
            .await
            .map_err(ApiError::internal)?;
        Ok(found.remove(&guild_id).unwrap_or_default())
    }

    /// Changes a member's live voice state (the guild's actor tells the guild and the voice
    /// connection): the state after it, or why there was none to change.
    pub async fn voice_change(
        &self,
        guild_id: i64,
        user_id: i64,
        change: VoiceChange,
    ) -> Result<Result<Option<Value>, VoiceError>, ApiError> {
        self.tree
            .guilds
            .send(UpdateVoice {
                guild_id,
                user_id,
                change,
            })
            .await
            .map_err(ApiError::internal)
    }

    /// The user's live sessions start hearing a guild they joined.
    pub fn subscribe_user(&self, guild_id: i64, user_id: i64) {
        self.tree
            .sessions
            .do_send(SubscribeUser { guild_id, user_id });
    }
}
