//! Per-connection client-protocol state, shared between the connection task and
//! the shard's hub (which routes owner replies to it by connection id).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::hub::mesh::ChannelName;
use crate::shard::conn::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Sent to the owner, reply not back yet.
    Pending,
    Active,
    /// Unsubscribed while pending: undo when the owner answers.
    Cancelled,
}

/// Who the connection is, fixed at connect.
#[derive(Debug)]
pub struct Identity {
    pub client: Arc<str>,
    pub user: Arc<str>,
    /// The token's `info` claim (raw JSON), for `conn_info`.
    pub conn_info: Option<Box<str>>,
    /// `ClientInfo` JSON for presence, join/leave and publication `info`.
    pub info: Bytes,
}

pub struct Session {
    pub conn: Rc<Conn>,
    identity: RefCell<Option<Identity>>,
    /// A ping went out and no pong has come back yet.
    pub awaiting_pong: Cell<bool>,
    /// Ping sweeps seen without a connect command.
    pub unconnected_sweeps: Cell<u8>,
    /// Unix seconds when the connection's credentials expire (0: never).
    pub expires_at: Cell<u64>,
    /// Command rate limit: tokens left and the second they were counted in.
    pub rate: Cell<(u32, u64)>,
    subs: RefCell<Vec<(ChannelName, SubState)>>,
    /// A connect reply waiting for its server-side subscriptions.
    pub connecting: RefCell<Option<Box<PendingConnect>>>,
    /// The session id of an HTTP or unidirectional transport (what
    /// `/emulation` requests name); none on WebSocket.
    pub transport_session: Option<Box<str>>,
    /// What the proxy calls need (only where `[proxy.*]` is configured).
    pub proxy: RefCell<Option<Box<super::proxy::ProxyState>>>,
}

/// A connect reply being put together: its result fields so far, and the
/// server-side subscriptions it reports as their broker answers come.
pub struct PendingConnect {
    /// The connect command's id.
    pub id: u32,
    /// `{"id":N,"connect":{...` without its closing braces.
    pub head: BytesMut,
    /// `"channel":{...}` entries, comma-separated.
    pub subs: BytesMut,
    /// Answers still to come.
    pub waiting: usize,
    /// A subscription failed: the connection is closed (3004, reconnect).
    pub failed: bool,
}

impl Session {
    pub fn new(conn: Rc<Conn>) -> Self {
        Self::with_transport_session(conn, None)
    }

    pub fn with_transport_session(conn: Rc<Conn>, transport_session: Option<Box<str>>) -> Self {
        Session {
            conn,
            identity: RefCell::new(None),
            awaiting_pong: Cell::new(false),
            unconnected_sweeps: Cell::new(0),
            expires_at: Cell::new(0),
            rate: Cell::new((0, 0)),
            subs: RefCell::new(Vec::new()),
            connecting: RefCell::new(None),
            transport_session,
            proxy: RefCell::new(None),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.identity.borrow().is_some()
    }

    pub fn set_identity(&self, id: Identity) {
        *self.identity.borrow_mut() = Some(id);
    }

    pub fn client_id(&self) -> Option<Arc<str>> {
        self.identity.borrow().as_ref().map(|i| i.client.clone())
    }

    pub fn with_identity<R>(&self, f: impl FnOnce(&Identity) -> R) -> Option<R> {
        self.identity.borrow().as_ref().map(f)
    }

    pub fn sub_state(&self, channel: &str) -> Option<SubState> {
        self.subs
            .borrow()
            .iter()
            .find(|(c, _)| &**c == channel)
            .map(|(_, s)| *s)
    }

    /// Live subscriptions (pending or active).
    pub fn sub_count(&self) -> usize {
        self.subs
            .borrow()
            .iter()
            .filter(|(_, s)| *s != SubState::Cancelled)
            .count()
    }

    pub fn add_pending(&self, channel: ChannelName) {
        let mut subs = self.subs.borrow_mut();
        if subs.capacity() == 0 {
            // Most connections hold one subscription: room for one (24 B)
            // rather than `Vec`'s first four (96 B). Later pushes grow as
            // usual.
            subs.reserve_exact(1);
        }
        subs.push((channel, SubState::Pending));
    }

    /// The owner confirmed: pending becomes active (true); a cancelled entry is
    /// dropped (false).
    pub fn activate(&self, channel: &str) -> bool {
        let mut subs = self.subs.borrow_mut();
        let Some(pos) = subs
            .iter()
            .position(|(c, s)| &**c == channel && *s != SubState::Active)
        else {
            return false;
        };
        if subs[pos].1 == SubState::Pending {
            subs[pos].1 = SubState::Active;
            true
        } else {
            subs.remove(pos);
            false
        }
    }

    /// The broker refused a pending (or cancelled) subscription: forget it.
    pub fn fail_pending(&self, channel: &str) {
        let mut subs = self.subs.borrow_mut();
        if let Some(pos) = subs
            .iter()
            .position(|(c, s)| &**c == channel && *s != SubState::Active)
        {
            subs.remove(pos);
        }
    }

    /// Client unsubscribe: returns the state the subscription was in. Active
    /// ones are removed; pending ones become cancelled.
    pub fn unsubscribe(&self, channel: &str) -> Option<SubState> {
        let mut subs = self.subs.borrow_mut();
        let pos = subs
            .iter()
            .position(|(c, s)| &**c == channel && *s != SubState::Cancelled)?;
        let state = subs[pos].1;
        match state {
            SubState::Active => {
                subs.remove(pos);
            }
            SubState::Pending => subs[pos].1 = SubState::Cancelled,
            SubState::Cancelled => {}
        }
        Some(state)
    }

    pub fn take_subs(&self) -> Vec<(ChannelName, SubState)> {
        std::mem::take(&mut *self.subs.borrow_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_states() {
        let s = Session::new(Rc::new(Conn::new(1, 0)));
        s.add_pending("a".into());
        assert_eq!(s.sub_state("a"), Some(SubState::Pending));
        assert!(s.activate("a"));
        assert_eq!(s.unsubscribe("a"), Some(SubState::Active));
        assert_eq!(s.sub_state("a"), None);
        s.add_pending("b".into());
        assert_eq!(s.unsubscribe("b"), Some(SubState::Pending));
        assert_eq!(s.sub_count(), 0);
        // Resubscribe while the cancelled one is still in flight.
        s.add_pending("b".into());
        assert!(!s.activate("b"), "first answer undoes the cancelled entry");
        assert!(s.activate("b"), "second answer activates the new one");
        assert_eq!(s.sub_count(), 1);
    }
}
