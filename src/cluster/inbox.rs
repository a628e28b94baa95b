//! What a node does with what other nodes published: each message is checked against its
//! channel's numbering, then applied here as it was applied on the node that published it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{PushInfo, PushKind, Value};
use spacebar_actors::call::SeatArrived;
use spacebar_actors::guild::voice::Heard;
use spacebar_actors::guild::Resync;
use spacebar_actors::interest::Topic;
use spacebar_actors::registry::{
    DispatchToUser, Friendship, LoginsEnded, PresenceHeard, TakeSession, UserChanged, UserLost,
};
use spacebar_actors::Dispatch;
use tokio::sync::mpsc;

use super::envelope::{Body, Envelope};
use super::subscriber::{Gap, Listening};
use super::{keys, ownership};
use crate::events;
use crate::state::AppState;

pub(super) struct Inbox {
    pub(super) state: Weak<AppState>,
    pub(super) node_id: Arc<str>,
    pub(super) listening: Listening,
    pub(super) overflowed: Arc<AtomicBool>,
}

impl Inbox {
    /// Handles messages as they arrive, and the gaps recovery finds, until the server stops.
    pub(super) async fn run(
        self,
        mut inbox: mpsc::Receiver<PushInfo>,
        mut gaps: mpsc::UnboundedReceiver<Gap>,
    ) {
        loop {
            tokio::select! {
                info = inbox.recv() => match info {
                    Some(info) => self.received(info),
                    None => return,
                },
                Some(gap) = gaps.recv() => match gap {
                    Gap::Topic(topic, lost_at) => self.lost(topic, lost_at),
                    Gap::Shared => self.reload_shared(),
                },
            }
            if self.overflowed.swap(false, Ordering::AcqRel) {
                tracing::error!("the cluster inbox overflowed: checking every channel");
                self.listening.recover();
            }
            if self.state.strong_count() == 0 {
                return;
            }
        }
    }

    fn received(&self, info: PushInfo) {
        if info.kind == PushKind::Disconnection {
            tracing::warn!("the cluster bus disconnected: checking what was missed");
            return self.listening.recover();
        }
        let [Value::BulkString(channel), Value::BulkString(message)] = info.data.as_slice() else {
            return;
        };
        let channel = String::from_utf8_lossy(channel);
        let (seq, envelope) = match Envelope::decode(message) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::error!(%error, %channel, "an envelope did not decode");
                return self.missed(&channel, SystemTime::now());
            }
        };
        match self.listening.channels.arrived(&channel, seq) {
            None => return,
            Some(true) => self.missed(&channel, SystemTime::now()),
            Some(false) => {}
        }
        if let Body::Lost { at_ms, everything } = envelope.body {
            let lost_at = UNIX_EPOCH + Duration::from_millis(at_ms);
            if everything {
                for topic in self.listening.topics() {
                    self.lost(topic, lost_at);
                }
            }
            return self.missed(&channel, lost_at);
        }
        // Its own sessions had it from the node that published it.
        if *envelope.origin != *self.node_id {
            if let Some(state) = self.state.upgrade() {
                apply(
                    &state,
                    &envelope.origin,
                    envelope.body,
                    keys::topic(&channel),
                );
            }
        }
    }

    /// `channel` lost messages before `lost_at`: whoever depends on it starts over (on the
    /// channel every node hears: the configuration and bans are read again).
    fn missed(&self, channel: &str, lost_at: SystemTime) {
        match keys::topic(channel) {
            Some(topic) => self.lost(topic, lost_at),
            None if channel == keys::EVERY_NODE => self.reload_shared(),
            // The node's own channel: a lost request times out where it was asked.
            None => {}
        }
    }

    /// Reads the configuration and the instance bans again from the database.
    fn reload_shared(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = state.reload_shared().await {
                tracing::error!(%error, "the shared configuration did not reload");
            }
        });
    }

    fn lost(&self, topic: Topic, lost_at: SystemTime) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        tracing::warn!(?topic, "cluster events lost: its sessions here start over");
        match topic {
            Topic::Guild(guild_id) => state.tree.guilds.do_send(Resync { guild_id, lost_at }),
            Topic::User(user_id) => state.tree.sessions.do_send(UserLost { user_id, lost_at }),
        }
    }
}

/// Does here what the publishing node (`origin`) did at home (`topic`: whose channel it came
/// on).
fn apply(state: &Arc<AppState>, origin: &str, body: Body, topic: Option<Topic>) {
    match body {
        Body::Event(event) => events::deliver(&state.tree, &event),
        Body::LoginsEnded {
            user_id,
            login_id,
            keep,
        } => state.tree.sessions.do_send(LoginsEnded {
            user_id,
            login_id,
            keep,
        }),
        Body::Friendship { users, friends } => {
            state.tree.sessions.do_send(Friendship { users, friends })
        }
        Body::ConfigChanged { changes } => {
            if let Err(error) = state.change_config_here(&changes) {
                tracing::error!(%error, "a configuration change from another node was refused");
            }
        }
        Body::Banned { ip, banned } => state.ban_here(ip, banned),
        Body::Presence {
            user_id,
            presence,
            version,
        } => {
            if let Some(topic) = topic {
                state.tree.sessions.do_send(PresenceHeard {
                    user_id,
                    presence,
                    version,
                    topic,
                });
            }
        }
        Body::UserChanged { user_id, user } => {
            if let Some(Topic::User(friend)) = topic {
                state.tree.sessions.do_send(UserChanged {
                    user_id,
                    user,
                    friends: vec![friend],
                });
            }
        }
        Body::HandoffRequest {
            session_id,
            release,
            reply_to,
            request_id,
        } => {
            let state = state.clone();
            tokio::spawn(async move {
                let take = TakeSession {
                    session_id,
                    release,
                };
                let handover = state.tree.sessions.send(take).await.ok().flatten();
                if let Some(cluster) = &state.cluster {
                    cluster.answer(&reply_to, request_id, handover);
                }
            });
        }
        Body::HandoffAnswer {
            request_id,
            handover,
        } => {
            if let Some(cluster) = &state.cluster {
                cluster.answered(request_id, handover);
            }
        }
        Body::Drain => state.node.ask_to_drain(),
        Body::Host { room, epoch } => {
            if let Some(cluster) = &state.cluster {
                cluster.placement.hosted_at(room, epoch);
            }
        }
        Body::Seat(change) => state.tree.admissions.apply(origin, change),
        Body::OwnerCommand {
            guild_id,
            epoch,
            asker,
            request,
            command,
        } => {
            let state = state.clone();
            tokio::spawn(async move {
                let Some(cluster) = &state.cluster else {
                    return;
                };
                let answer = ownership::answer(&state, cluster, guild_id, epoch, command).await;
                cluster.publisher.publish(
                    vec![keys::node_channel(&asker)],
                    Body::OwnerAnswer { request, answer },
                );
            });
        }
        Body::OwnerAnswer { request, answer } => {
            if let Some(cluster) = &state.cluster {
                cluster.ownership.answered(request, answer);
            }
        }
        Body::CallCommand {
            channel_id,
            epoch,
            hops,
            command,
        } => {
            if let Some(cluster) = &state.cluster {
                let calls = &state.tree.calls;
                cluster
                    .calls
                    .received(calls, channel_id, epoch, hops, command);
            }
        }
        Body::CallDispatch { event, d } => {
            if let Some(Topic::User(user_id)) = topic {
                match Dispatch::new(event, &d) {
                    Ok(dispatch) => state
                        .tree
                        .sessions
                        .do_send(DispatchToUser { user_id, dispatch }),
                    Err(error) => tracing::error!(%error, %event, "a call event did not serialise"),
                }
            }
        }
        Body::CallSeat(command) => state.tree.calls.do_send(SeatArrived(command)),
        Body::VoiceNotices { guild_id, notices } => {
            state.tree.guilds.do_send(Heard { guild_id, notices })
        }
        // Handled as a gap before it gets here.
        Body::Lost { .. } => {}
    }
}
