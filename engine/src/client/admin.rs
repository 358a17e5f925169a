//! Server-side actions on a user's connections (from the server API), applied
//! on one shard to that shard's sessions.

use std::rc::Rc;

use super::session::{Session, SubState};
use crate::broker::{Control, SubscribeReq};
use crate::hub::mesh::{ChannelName, Member};
use crate::hub::Hub;
use crate::protocol::push;

/// Applies a control action that came from another node, on one shard.
pub fn apply(hub: &Hub, c: &Control) {
    match c {
        Control::Disconnect {
            user,
            client,
            code,
            reason,
        } => {
            disconnect(hub, user, client.as_deref(), *code, reason.clone());
        }
        Control::Unsubscribe {
            user,
            client,
            channel,
        } => {
            unsubscribe(hub, user, client.as_deref(), channel);
        }
        Control::Subscribe {
            user,
            client,
            channel,
        } => {
            subscribe(hub, user, client.as_deref(), channel);
        }
        Control::Emulate {
            session,
            data,
            base64,
        } => {
            use base64::Engine as _;
            let data = if *base64 {
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(d) => d.into(),
                    Err(_) => return,
                }
            } else {
                data.clone().into()
            };
            super::registry::Registry::of(hub).emulate(session, data);
        }
    }
}

/// Unsubscribe push code for a server-side unsubscribe (client may not
/// resubscribe on its own).
pub const UNSUBSCRIBE_SERVER: u32 = 2000;

fn matching(hub: &Hub, user: &str, client: Option<&str>) -> Vec<Rc<Session>> {
    let mut found = Vec::new();
    super::registry::Registry::of(hub).for_each(|s| {
        // The user first: an anonymous session's client id is made only
        // when a client is asked for and the user matches.
        let hit = s.user().is_some_and(|u| &*u == user)
            && client.is_none_or(|c| s.with_identity(|i| i.client.is(c)).unwrap_or(false));
        if hit {
            found.push(s.clone());
        }
    });
    found
}

/// Closes the user's connections (or one client) with `code`; returns how many.
pub fn disconnect(hub: &Hub, user: &str, client: Option<&str>, code: u16, reason: String) -> usize {
    let sessions = matching(hub, user, client);
    for s in &sessions {
        s.conn.close_with(code, reason.clone());
    }
    sessions.len()
}

/// Removes the user's connections from `channel`, telling each with an
/// unsubscribe push.
pub fn unsubscribe(hub: &Hub, user: &str, client: Option<&str>, channel: &str) -> usize {
    let sessions = matching(hub, user, client);
    let mut n = 0;
    for s in &sessions {
        if s.unsubscribe(channel) == Some(SubState::Active) {
            hub.subs.borrow_mut().remove(channel, &s.conn);
            if let Some(c) = s.client_id() {
                hub.unsubscribe_at_owner(channel.into(), c);
            }
            s.conn.send(push::unsubscribe_frame(
                channel,
                UNSUBSCRIBE_SERVER,
                "server unsubscribe",
            ));
            n += 1;
        }
    }
    n
}

/// Subscribes the user's connections to `channel` (a server-side
/// subscription: the client learns of it through a subscribe push).
pub fn subscribe(hub: &Hub, user: &str, client: Option<&str>, channel: &str) -> usize {
    let sessions = matching(hub, user, client);
    let mut n = 0;
    let ch: ChannelName = channel.into();
    for s in &sessions {
        if s.sub_state(channel)
            .is_some_and(|st| st != SubState::Cancelled)
        {
            continue;
        }
        let Some(member) = s.with_identity(|i| Member {
            client: i.client.to_arc(),
            user: i.user.clone(),
            info: i.info(),
        }) else {
            continue;
        };
        let tracked = hub
            .channel_opts(channel)
            .is_some_and(|o| o.presence || o.join_leave);
        let member = tracked.then_some(member);
        s.add_pending(ch.clone());
        let reply = hub.reply_to(s.conn.id, 0);
        hub.subscribe(SubscribeReq {
            channel: ch.clone(),
            member,
            reply,
            recoverable: false,
            recover: None,
            expires_at: 0,
            reject_unrecovered: false,
            delta: false,
            filter: None,
        });
        n += 1;
    }
    n
}
