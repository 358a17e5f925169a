//! The sessions of one shard's connections, and what the hub asks of them
//! (`hub::Clients`): the subscribe and publish answers are written here, in
//! the client protocol, and framed for the connection's transport.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::session::{Session, SubState};
use crate::broker::{Position, Recovery};
use crate::hub::mesh::{ChannelName, ReplyTo};
use crate::hub::{Accepted, Clients, Hub};
use crate::protocol::codes::{self, ClientError};
use crate::protocol::json::put_str;
use crate::protocol::push;
use crate::shard::conn::Conn;
use crate::shard::outbox::slot_of;
use crate::ws::frame::{encode, OpCode};

/// Runs a client-protocol payload on a session, as if it had arrived on
/// the session's connection (the `/emulation` path).
pub type Emulate = Box<dyn Fn(&Rc<Session>, Bytes)>;

/// The shard's sessions by the slot in their connection's id
/// (`outbox::slot_of`): one pointer per slot, no hashing. The slot of a
/// connection that is gone may hold a newer connection's session, so a
/// lookup by id checks the whole id.
#[derive(Default)]
pub struct Registry {
    sessions: RefCell<Vec<Option<Rc<Session>>>>,
    /// Sessions of the HTTP transports by their session id.
    by_transport_session: RefCell<HashMap<Box<str>, Rc<Session>, ahash::RandomState>>,
    emulate: OnceCell<Emulate>,
}

impl Registry {
    /// The registry attached to `hub`.
    pub fn of(hub: &Hub) -> &Registry {
        hub.clients()
            .as_any()
            .downcast_ref::<Registry>()
            .expect("the client registry is the hub's clients")
    }

    pub fn insert(&self, s: Rc<Session>) {
        if let Some(id) = s.transport_session() {
            self.by_transport_session
                .borrow_mut()
                .insert(id.into(), s.clone());
        }
        let slot = slot_of(s.conn.id);
        let mut table = self.sessions.borrow_mut();
        if table.len() <= slot {
            table.resize(slot + 1, None);
        }
        // A connection's id (and slot) is its own until it is dropped,
        // and a session holds its connection: the slot is free.
        debug_assert!(table[slot].is_none(), "slot {slot} taken");
        table[slot] = Some(s);
    }

    /// The session of connection `conn`, if it is still here.
    fn find<R>(&self, conn: u64, f: impl FnOnce(&Rc<Session>) -> R) -> Option<R> {
        match self.sessions.borrow().get(slot_of(conn)) {
            Some(Some(s)) if s.conn.id == conn => Some(f(s)),
            _ => None,
        }
    }

    /// Runs `data` on the HTTP-transport session `id`, if it is here.
    pub fn emulate(&self, id: &str, data: Bytes) {
        let s = self.by_transport_session.borrow().get(id).cloned();
        if let (Some(s), Some(run)) = (s, self.emulate.get()) {
            // Unidirectional sessions have ids too, but take no commands.
            if s.conn.framing().is_emulation() && !s.conn.is_closing() {
                run(&s, data);
            }
        }
    }

    /// Sets what `/emulation` payloads are run with (the client service).
    pub fn set_emulate(&self, f: Emulate) {
        let _ = self.emulate.set(f);
    }

    pub fn get(&self, conn: u64) -> Option<Rc<Session>> {
        self.find(conn, Rc::clone)
    }

    /// Every session now (a copy: callers may act on them freely).
    pub fn all(&self) -> Vec<Rc<Session>> {
        self.sessions.borrow().iter().flatten().cloned().collect()
    }

    /// The sessions of slice `k` of `n`: those whose slot is `k` modulo `n`.
    /// A session keeps its slot for its life, so `n` calls, one per `k`,
    /// visit every session once; each call reads one entry in `n`.
    pub fn slice(&self, k: u64, n: u64) -> Vec<Rc<Session>> {
        let table = self.sessions.borrow();
        let (k, n) = (k as usize, n.max(1) as usize);
        (k.min(table.len())..table.len())
            .step_by(n)
            .filter_map(|i| table[i].clone())
            .collect()
    }

    /// Calls `f` on every session without copying the list (`f` must not
    /// add or remove sessions).
    pub fn for_each(&self, mut f: impl FnMut(&Rc<Session>)) {
        for s in self.sessions.borrow().iter().flatten() {
            f(s);
        }
    }

    /// Drops a session: its local subscriptions and its presence everywhere.
    pub fn remove(&self, hub: &Hub, session: &Rc<Session>) {
        self.forget(session);
        let client = session.client_id().unwrap_or_else(|| "".into());
        for (channel, state) in session.take_subs() {
            if state == SubState::Active {
                hub.drop_subscription(channel, &session.conn, client.clone());
            }
            // Pending ones are undone when the owner's answer finds no session.
        }
    }
}

impl Registry {
    /// Takes `session` out of the tables (nothing else).
    fn forget(&self, session: &Rc<Session>) {
        {
            let mut table = self.sessions.borrow_mut();
            let slot = slot_of(session.conn.id);
            if table
                .get(slot)
                .is_some_and(|s| s.as_ref().is_some_and(|s| Rc::ptr_eq(s, session)))
            {
                table[slot] = None;
                // Free slots at the end are not kept.
                while table.last().is_some_and(Option::is_none) {
                    table.pop();
                }
            }
        }
        if let Some(id) = session.transport_session() {
            self.by_transport_session.borrow_mut().remove(id);
        }
    }
}

impl Clients for Registry {
    fn reply(&self, conn: u64, line: &[u8]) {
        self.find(conn, |s| s.conn.reply_text(line));
    }

    fn activate(
        &self,
        channel: &ChannelName,
        reply: ReplyTo,
        a: &Accepted<'_>,
    ) -> Option<Rc<Conn>> {
        let s = self.get(reply.conn)?;
        if a.reject_unrecovered && matches!(a.recovery, Some(Recovery::Unrecoverable)) {
            // The app reloads its state and subscribes again (getState).
            s.fail_pending(channel);
            if reply.id != 0 {
                let mut line = BytesMut::with_capacity(64);
                push::error(&mut line, reply.id, codes::UNRECOVERABLE_POSITION);
                s.conn.reply_text(&line);
            }
            return None;
        }
        if !s.activate(channel) {
            connect_answered(&s, reply.id, Answer::Dropped);
            return None;
        }
        if connect_answered(&s, reply.id, Answer::Subscribed(channel, a)) {
            return Some(s.conn.clone());
        }
        let frame = if reply.id == 0 {
            push::server_subscribe_frame(channel, a.epoch, a.offset)
        } else {
            let data = super::proxy::take_sub_data(&s, channel);
            encode(OpCode::Text, &subscribe_reply(reply.id, a, data.as_deref()))
        };
        s.conn.send(frame);
        Some(s.conn.clone())
    }

    fn published(&self, reply: ReplyTo, result: Result<Position, ClientError>) {
        let mut line = BytesMut::with_capacity(32);
        match result {
            Ok(_) => push::empty_result(&mut line, reply.id, "publish"),
            Err(e) => push::error(&mut line, reply.id, e),
        }
        self.reply(reply.conn, &line);
    }

    fn subscribe_failed(&self, channel: &str, reply: ReplyTo, error: ClientError) {
        let Some(s) = self.get(reply.conn) else {
            return;
        };
        // Either answer removes the pending (or cancelled) entry.
        s.fail_pending(channel);
        if connect_answered(&s, reply.id, Answer::Failed) {
            return;
        }
        if reply.id != 0 {
            let mut line = BytesMut::with_capacity(64);
            push::error(&mut line, reply.id, error);
            s.conn.reply_text(&line);
        }
    }

    fn insufficient(&self, channel: &str, conns: Vec<Rc<Conn>>) -> Vec<Arc<str>> {
        let frame = push::unsubscribe_frame(channel, 2500, "insufficient state");
        let mut clients = Vec::with_capacity(conns.len());
        for conn in conns {
            if let Some(s) = self.get(conn.id) {
                s.unsubscribe(channel);
                clients.push(s.client_id().unwrap_or_else(|| "".into()));
            }
            conn.send(frame.clone());
        }
        clients
    }

    fn census(&self) -> (usize, Vec<String>) {
        let (mut connected, mut users) = (0, Vec::new());
        for s in self.sessions.borrow().iter().flatten() {
            users.extend(s.user().map(|u| u.to_string()));
            connected += s.is_connected() as usize;
        }
        (connected, users)
    }

    fn client_id(&self, conn: u64) -> Option<Arc<str>> {
        self.find(conn, |s| s.client_id()).flatten()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// What became of one server-side subscription of a connect in progress.
enum Answer<'a> {
    Subscribed(&'a str, &'a Accepted<'a>),
    /// Unsubscribed meanwhile: not reported.
    Dropped,
    /// The broker could not take it.
    Failed,
}

/// A broker answer for a server-side subscription of a connect in progress
/// (`id` is its command id): the channel's result joins the reply, which
/// leaves once every answer is in. False when `id` is not that connect's.
fn connect_answered(s: &Session, id: u32, answer: Answer<'_>) -> bool {
    let Some(cell) = s.pending_connect() else {
        return false;
    };
    let mut slot = cell.borrow_mut();
    let Some(pc) = slot.as_mut().filter(|pc| pc.id == id && id != 0) else {
        return false;
    };
    match answer {
        Answer::Subscribed(channel, a) => {
            if !pc.subs.is_empty() {
                pc.subs.put_u8(b',');
            }
            put_str(&mut pc.subs, channel);
            pc.subs.put_slice(b":{");
            subscribe_fields(&mut pc.subs, a);
            pc.subs.put_u8(b'}');
        }
        Answer::Dropped => {}
        Answer::Failed => pc.failed = true,
    }
    pc.waiting -= 1;
    if pc.waiting > 0 {
        return true;
    }
    let pc = slot.take().expect("pending connect");
    drop(slot);
    if pc.failed {
        // A server-side subscription the client expects is missing: it
        // reconnects and tries again (3004).
        s.conn.close_with(
            codes::INTERNAL_SERVER_ERROR.code,
            codes::INTERNAL_SERVER_ERROR.reason,
        );
        return true;
    }
    let mut line = pc.head;
    line.put_slice(b",\"subs\":{");
    line.put_slice(&pc.subs);
    line.put_u8(b'}');
    push::close_result(&mut line);
    s.conn.release_with(encode(OpCode::Text, &line));
    true
}

/// The subscribe reply: the stream position, and what a recovering
/// subscriber missed.
/// `data`: the subscribe proxy's, for the client.
fn subscribe_reply(
    id: u32,
    a: &Accepted<'_>,
    data: Option<&serde_json::value::RawValue>,
) -> BytesMut {
    let mut line = BytesMut::with_capacity(64);
    push::open_result(&mut line, id, "subscribe");
    subscribe_fields(&mut line, a);
    if let Some(d) = data {
        line.put_slice(b",\"data\":");
        line.put_slice(d.get().as_bytes());
    }
    push::close_result(&mut line);
    line
}

/// A subscribe result's fields (inside its braces).
fn subscribe_fields(line: &mut BytesMut, a: &Accepted<'_>) {
    if a.recoverable {
        line.put_slice(b"\"recoverable\":true,");
    }
    push::stream_position(line, a.epoch, a.offset);
    if a.expires_at > 0 {
        line.put_slice(b",\"expires\":true,\"ttl\":");
        crate::protocol::json::put_u64(line, a.expires_at.saturating_sub(crate::sys::unix_now()));
    }
    if a.delta {
        line.put_slice(b",\"delta\":true");
    }
    if let Some(r) = &a.recovery {
        line.put_slice(b",\"was_recovering\":true");
        match r {
            Recovery::Recovered(pubs) if a.delta => {
                line.put_slice(b",\"recovered\":true,\"publications\":");
                push::put_array(line, &crate::protocol::delta::recovered(pubs));
            }
            Recovery::Recovered(pubs) if a.filter.is_some() => {
                // Only what the filter passes, as live.
                let f = a.filter.as_deref().expect("filter");
                let kept: Vec<_> = pubs
                    .iter()
                    .filter(|o| f.matches(&crate::protocol::tags::of_object(o)))
                    .cloned()
                    .collect();
                line.put_slice(b",\"recovered\":true,\"publications\":");
                push::put_array(line, &kept);
            }
            Recovery::Recovered(pubs) => {
                line.put_slice(b",\"recovered\":true,\"publications\":");
                push::put_array(line, pubs);
            }
            Recovery::Unrecoverable => line.put_slice(b",\"recovered\":false"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::framing::Framing;
    use crate::shard::outbox::Outbox;

    fn session(outbox: &Rc<Outbox>) -> Rc<Session> {
        Rc::new(Session::new(Rc::new(Conn::of_shard(
            Framing::WebSocket,
            outbox,
        ))))
    }

    #[test]
    fn a_gone_connection_finds_nothing_after_its_slot_is_reused() {
        let (outbox, r) = (Rc::new(Outbox::new(0)), Registry::default());
        let (a, b) = (session(&outbox), session(&outbox));
        r.insert(a.clone());
        r.insert(b.clone());
        let gone = a.conn.id;
        assert!(r.get(gone).is_some_and(|s| Rc::ptr_eq(&s, &a)));
        r.forget(&a);
        assert!(r.get(gone).is_none());
        drop(a);
        // The slot is free once the connection is dropped: the next one takes it.
        let c = session(&outbox);
        assert_eq!(slot_of(c.conn.id), slot_of(gone));
        assert_ne!(c.conn.id, gone);
        r.insert(c.clone());
        assert!(
            r.get(gone).is_none(),
            "a reply to the gone one finds nothing"
        );
        assert!(r.client_id(gone).is_none());
        r.reply(gone, b"{}");
        assert!(!c.conn.has_output(), "and is not given to the new one");
        r.reply(c.conn.id, b"{}");
        assert!(c.conn.has_output());
        assert!(r.get(b.conn.id).is_some_and(|s| Rc::ptr_eq(&s, &b)));
        // An id past the table, and one of a slot never used.
        assert!(r.get(u64::from(u32::MAX)).is_none());
        assert!(r.get(7).is_none());
    }

    #[test]
    fn n_slices_visit_every_session_once() {
        let (outbox, r) = (Rc::new(Outbox::new(0)), Registry::default());
        let all: Vec<_> = (0..23).map(|_| session(&outbox)).collect();
        for s in &all {
            r.insert(s.clone());
        }
        // Holes: some gone.
        for s in all.iter().step_by(4) {
            r.forget(s);
        }
        let here: Vec<u64> = all
            .iter()
            .filter(|s| r.get(s.conn.id).is_some())
            .map(|s| s.conn.id)
            .collect();
        assert_eq!(here.len(), 17);
        for n in [1, 2, 5, 10, 40] {
            let mut seen: Vec<u64> = (0..n)
                .flat_map(|k| {
                    let slice = r.slice(k, n);
                    assert!(slice.iter().all(|s| slot_of(s.conn.id) as u64 % n == k));
                    slice.into_iter().map(|s| s.conn.id)
                })
                .collect();
            seen.sort_unstable();
            let mut want = here.clone();
            want.sort_unstable();
            assert_eq!(seen, want, "{n} slices");
        }
        assert_eq!(r.all().len(), 17);
        let mut count = 0;
        r.for_each(|_| count += 1);
        assert_eq!(count, 17);
    }

    #[test]
    fn the_table_gives_back_free_slots_at_its_end() {
        let (outbox, r) = (Rc::new(Outbox::new(0)), Registry::default());
        let all: Vec<_> = (0..8).map(|_| session(&outbox)).collect();
        for s in &all {
            r.insert(s.clone());
        }
        for s in all.iter().rev().take(5) {
            r.forget(s);
        }
        assert_eq!(r.sessions.borrow().len(), 3);
        r.forget(&all[0]);
        assert_eq!(r.sessions.borrow().len(), 3, "a hole is kept");
    }
}
