//! Per-connection client-protocol state, shared between the connection task and
//! the shard's hub (which routes owner replies to it by connection id).
//!
//! A connected, subscribed, idle client costs its session and little else,
//! so the session is kept small (docs/why-subscribed-memory.md): an
//! anonymous client's identity is one byte, its client id made again from
//! the connection's id when asked (`ClientId::of_conn`; any other identity
//! is boxed), the `ClientInfo` JSON is built when it is needed, the first
//! subscription sits in the session itself, and what only some sessions
//! use (transport session id, proxy state, pending connect, rate limit) is
//! one boxed part allocated by the first use.

use std::cell::{Cell, OnceCell, Ref, RefCell, RefMut};
use std::rc::Rc;
use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;

use crate::hub::mesh::ChannelName;
use crate::protocol::push;
use crate::proxy::Headers;
use crate::shard::conn::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Sent to the owner, reply not back yet.
    Pending,
    Active,
    /// Unsubscribed while pending: undo when the owner answers.
    Cancelled,
}

/// A client id: a UUID (what this server makes) as its 16 bytes, anything
/// else (a connect proxy's or a token's choice) as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    Uuid([u8; 16]),
    Other(Arc<str>),
}

/// A UUID's text: 36 bytes, lowercase hex in 8-4-4-4-12 groups.
const UUID_LEN: usize = 36;
const DASHES: [usize; 4] = [8, 13, 18, 23];

thread_local! {
    /// This thread's key for the client ids it makes (`ClientId::of_conn`):
    /// SipHash keys drawn from the OS's randomness, per thread.
    static ID_KEY: std::hash::RandomState = std::hash::RandomState::new();
}

/// `r` with the version (4) and variant (10) bits of a random UUID.
fn uuid_v4(r: u128) -> [u8; 16] {
    ((r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62)).to_be_bytes()
}

impl ClientId {
    /// A new random UUID v4, from the OS's randomness (it names transport
    /// sessions, which are credentials: not a fast generator whose state
    /// its outputs give away).
    pub fn random() -> Self {
        let mut r = [0u8; 16];
        getrandom::fill(&mut r).expect("the OS's random source");
        ClientId::Uuid(uuid_v4(u128::from_be_bytes(r)))
    }

    /// The client id this thread gives the connection with id `conn`: a
    /// UUID v4 whose 122 free bits are a keyed hash of the id (SipHash-1-3,
    /// two outputs, the thread's random key). The same connection always
    /// gets the same id, so a session keeps nothing for it and makes it
    /// again when asked. No two live connections of a shard (a shard is a
    /// thread) have the same id, and each thread and process has its own
    /// key, so two live clients share an id with the probability two
    /// random v4 UUIDs do. A connection id comes back only after 2^32
    /// connections on its shard (its count wraps), and with it the client
    /// id of a connection long closed. Without the key, ids can no more be
    /// guessed than random ones.
    pub fn of_conn(conn: u64) -> Self {
        use std::hash::BuildHasher;
        let (hi, lo) = ID_KEY.with(|k| (k.hash_one((conn, 0u8)), k.hash_one((conn, 1u8))));
        ClientId::Uuid(uuid_v4(u128::from(hi) << 64 | u128::from(lo)))
    }

    /// `s` kept as 16 bytes when it is a UUID in the form `with_str` gives
    /// back (lowercase), else as it is.
    pub fn from_text(s: &str) -> Self {
        let b = s.as_bytes();
        if b.len() == UUID_LEN && DASHES.iter().all(|&i| b[i] == b'-') {
            let mut out = [0u8; 16];
            let mut n = 0;
            let mut ok = true;
            for (i, &c) in b.iter().enumerate() {
                if DASHES.contains(&i) {
                    continue;
                }
                let v = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    _ => {
                        ok = false;
                        break;
                    }
                };
                out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
                n += 1;
            }
            if ok {
                return ClientId::Uuid(out);
            }
        }
        ClientId::Other(s.into())
    }

    /// Calls `f` with the id's text (a UUID is written on the stack).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            ClientId::Other(s) => f(s),
            ClientId::Uuid(u) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut text = [b'-'; UUID_LEN];
                let mut at = 0;
                for &byte in u {
                    for nibble in [byte >> 4, byte & 0xf] {
                        if DASHES.contains(&at) {
                            at += 1;
                        }
                        text[at] = HEX[nibble as usize];
                        at += 1;
                    }
                }
                f(std::str::from_utf8(&text).expect("hex digits and dashes"))
            }
        }
    }

    /// The id's text as a shared string.
    pub fn to_arc(&self) -> Arc<str> {
        match self {
            ClientId::Other(s) => s.clone(),
            ClientId::Uuid(_) => self.with_str(|s| Arc::from(s)),
        }
    }

    pub fn is(&self, other: &str) -> bool {
        self.with_str(|s| s == other)
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

/// The user of anonymous connections: one shared empty string, not an
/// allocation per connection.
static NO_USER: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));

/// `user` as the shared string a session keeps (the empty one shared).
pub fn user_arc(user: &str) -> Arc<str> {
    if user.is_empty() {
        NO_USER.clone()
    } else {
        Arc::from(user)
    }
}

/// Who the connection is, fixed at connect.
#[derive(Debug, Clone)]
pub struct Identity {
    pub client: ClientId,
    pub user: Arc<str>,
    /// The token's `info` claim (raw JSON), for `conn_info`.
    pub conn_info: Option<Box<str>>,
}

impl Identity {
    /// `ClientInfo` JSON for presence, join/leave and publication `info`
    /// (built when asked: most connections never need it).
    pub fn info(&self) -> Bytes {
        self.info_with(None)
    }

    /// `ClientInfo` with a subscription's `chan_info`.
    pub fn info_with(&self, chan_info: Option<&str>) -> Bytes {
        self.client.with_str(|c| {
            push::client_info_with(&self.user, c, self.conn_info.as_deref(), chan_info)
        })
    }
}

/// A session's subscriptions in the order they were made: the first one
/// inline (most connections hold one), then an exactly sized boxed slice.
/// Subscribes and unsubscribes are rare next to the connection's life, so
/// the slice is reallocated on each rather than kept with spare room.
#[derive(Debug)]
enum Subs {
    Inline(Option<(ChannelName, SubState)>),
    /// Two or more. The enum stays the inline entry's size (24 B): the slice
    /// pointer fits beside the entry's state, whose spare values hold the tag.
    Heap(Box<[(ChannelName, SubState)]>),
}

impl Default for Subs {
    fn default() -> Self {
        Subs::Inline(None)
    }
}

impl Subs {
    fn as_slice(&self) -> &[(ChannelName, SubState)] {
        match self {
            Subs::Inline(o) => o.as_slice(),
            Subs::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(ChannelName, SubState)] {
        match self {
            Subs::Inline(o) => o.as_mut_slice(),
            Subs::Heap(v) => v,
        }
    }

    fn push(&mut self, entry: (ChannelName, SubState)) {
        let mut v = match std::mem::replace(self, Subs::Inline(None)) {
            Subs::Inline(None) => {
                *self = Subs::Inline(Some(entry));
                return;
            }
            Subs::Inline(Some(first)) => vec![first],
            Subs::Heap(b) => b.into_vec(),
        };
        v.reserve_exact(1);
        v.push(entry);
        *self = Subs::Heap(v.into_boxed_slice());
    }

    fn remove(&mut self, pos: usize) {
        let mut v = self.take();
        v.remove(pos);
        *self = match v.len() {
            0 => Subs::Inline(None),
            1 => Subs::Inline(v.pop()),
            _ => Subs::Heap(v.into_boxed_slice()),
        };
    }

    fn take(&mut self) -> Vec<(ChannelName, SubState)> {
        match std::mem::replace(self, Subs::Inline(None)) {
            Subs::Inline(o) => o.into_iter().collect(),
            Subs::Heap(b) => b.into_vec(),
        }
    }
}

/// Who a session is, as it keeps it: one byte. The common connected case
/// (the client id the session's connection gets, `ClientId::of_conn`; the
/// anonymous user; no `conn_info`) keeps nothing more; any other identity
/// is boxed in the session's `full`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No connect yet.
    #[default]
    Unconnected,
    /// Connected, anonymous, no `conn_info`, with the connection's own
    /// client id.
    Anonymous,
    /// Connected otherwise (a user, a `conn_info`, or a client id a proxy
    /// or a token chose): the identity is in `full`.
    Full,
    /// `full`'s identity is lent to a `with_identity` call.
    Lent,
}

/// Puts a lent identity back when the `with_identity` call ends (also on a
/// panic).
struct Lend<'a> {
    session: &'a Session,
    id: Option<Box<Identity>>,
}

impl Drop for Lend<'_> {
    fn drop(&mut self) {
        self.session.full.set(self.id.take());
        self.session.who.set(Who::Full);
    }
}

/// A session: allocated per connection and kept for its life, so it is
/// small (56 bytes, asserted in `size_tests::sizes`: `Rc<Session>` takes an
/// 80-byte chunk). What only some sessions use is in `Cold`, allocated by
/// the first of them.
pub struct Session {
    pub conn: Rc<Conn>,
    /// The identity, when `who` is `Full` (read by lending, see
    /// `with_identity`).
    full: Cell<Option<Box<Identity>>>,
    /// Subscriptions (a `Cell`: each method takes the list out and puts it
    /// back, and calls nothing meanwhile).
    subs: Cell<Subs>,
    /// Allocated when one of its parts is first used.
    cold: OnceCell<Box<Cold>>,
    /// Unix seconds when the connection's credentials expire (0: never);
    /// 32 bits hold seconds until 2106 (later ones are kept as that).
    expires_at: Cell<u32>,
    /// A ping went out and no pong has come back yet.
    pub awaiting_pong: Cell<bool>,
    /// Ping sweeps seen without a connect command.
    pub unconnected_sweeps: Cell<u8>,
    /// Who the connection is, once connected.
    who: Cell<Who>,
}

/// The parts of a session that most idle connections never use: a
/// connection on an HTTP transport, one served where proxies or a command
/// rate limit are configured, or whose connect reply waits for server-side
/// subscriptions, has them (56 bytes, in a 64-byte chunk, for the session's
/// life once allocated).
#[derive(Default)]
struct Cold {
    /// Command rate limit (only where one is configured): commands counted
    /// and the second (Unix, low 32 bits) they were counted in.
    rate: Cell<(u32, u32)>,
    /// A connect reply waiting for its server-side subscriptions.
    connecting: RefCell<Option<Box<PendingConnect>>>,
    /// The session id of an HTTP or unidirectional transport (what
    /// `/emulation` requests name); none on WebSocket.
    transport_session: Option<Box<str>>,
    /// What the proxy calls need (only where `[proxy.*]` is configured).
    proxy: RefCell<Option<Box<ProxyState>>>,
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
        let cold = OnceCell::new();
        if transport_session.is_some() {
            let _ = cold.set(Box::new(Cold {
                transport_session,
                ..Cold::default()
            }));
        }
        Session {
            conn,
            full: Cell::new(None),
            subs: Cell::new(Subs::default()),
            cold,
            expires_at: Cell::new(0),
            awaiting_pong: Cell::new(false),
            unconnected_sweeps: Cell::new(0),
            who: Cell::new(Who::Unconnected),
        }
    }

    /// The cold part, allocated if it was not.
    fn cold(&self) -> &Cold {
        self.cold.get_or_init(Box::default)
    }

    /// Unix seconds when the connection's credentials expire (0: never).
    pub fn expires_at(&self) -> u64 {
        self.expires_at.get().into()
    }

    pub fn set_expires_at(&self, at: u64) {
        self.expires_at.set(at.try_into().unwrap_or(u32::MAX));
    }

    pub fn is_connected(&self) -> bool {
        // Lent: asked within `with_identity`, so connected.
        self.who.get() != Who::Unconnected
    }

    /// The client id this session's connection gets unless a proxy or a
    /// token names another; kept as one byte once connected with it.
    pub fn own_client_id(&self) -> ClientId {
        ClientId::of_conn(self.conn.id)
    }

    pub fn set_identity(&self, id: Identity) {
        assert!(
            self.who.get() != Who::Lent,
            "identity set within with_identity"
        );
        if id.user.is_empty() && id.conn_info.is_none() && id.client == self.own_client_id() {
            self.full.set(None);
            self.who.set(Who::Anonymous);
        } else {
            self.full.set(Some(Box::new(id)));
            self.who.set(Who::Full);
        }
    }

    /// The user, if connected (no client id is made for it).
    pub fn user(&self) -> Option<Arc<str>> {
        match self.who.get() {
            Who::Anonymous => Some(NO_USER.clone()),
            _ => self.with_identity(|i| i.user.clone()),
        }
    }

    /// The client id as a shared string (made from the connection's id for
    /// an anonymous session).
    pub fn client_id(&self) -> Option<Arc<str>> {
        self.with_identity(|i| i.client.to_arc())
    }

    /// Calls `f` with the session's identity, if it is connected. An
    /// anonymous session's is made for the call (the shared empty user, the
    /// inline client id); any other is lent: `f` must not ask for it again
    /// (that panics).
    pub fn with_identity<R>(&self, f: impl FnOnce(&Identity) -> R) -> Option<R> {
        match self.who.get() {
            Who::Unconnected => None,
            Who::Anonymous => Some(f(&Identity {
                client: self.own_client_id(),
                user: NO_USER.clone(),
                conn_info: None,
            })),
            Who::Full => {
                self.who.set(Who::Lent);
                let lent = Lend {
                    session: self,
                    id: self.full.take(),
                };
                Some(f(lent.id.as_deref().expect("a full identity is kept")))
            }
            Who::Lent => panic!("a session's identity asked for within with_identity"),
        }
    }

    /// The session id of an HTTP or unidirectional transport (what
    /// `/emulation` requests name); none on WebSocket.
    pub fn transport_session(&self) -> Option<&str> {
        self.cold.get()?.transport_session.as_deref()
    }

    /// The command rate limit's count and second (allocates the cold part:
    /// only called where a limit is configured).
    pub fn rate(&self) -> &Cell<(u32, u32)> {
        &self.cold().rate
    }

    /// The connect reply waiting for server-side subscriptions, if one
    /// ever did.
    pub fn pending_connect(&self) -> Option<&RefCell<Option<Box<PendingConnect>>>> {
        self.cold.get().map(|c| &c.connecting)
    }

    pub fn set_pending_connect(&self, pc: Box<PendingConnect>) {
        *self.cold().connecting.borrow_mut() = Some(pc);
    }

    /// A connect reply is waiting for server-side subscriptions.
    pub fn is_connect_pending(&self) -> bool {
        self.pending_connect().is_some_and(|c| c.borrow().is_some())
    }

    /// The proxy state, if the session has one.
    pub fn proxy(&self) -> Option<RefMut<'_, ProxyState>> {
        let c = self.cold.get()?;
        RefMut::filter_map(c.proxy.borrow_mut(), |p| p.as_deref_mut()).ok()
    }

    /// The same, to read.
    pub fn proxy_ref(&self) -> Option<Ref<'_, ProxyState>> {
        let c = self.cold.get()?;
        Ref::filter_map(c.proxy.borrow(), |p| p.as_deref()).ok()
    }

    /// The proxy state, made if the session had none.
    pub fn proxy_or_new(&self) -> RefMut<'_, ProxyState> {
        RefMut::map(self.cold().proxy.borrow_mut(), |p| {
            &mut **p.get_or_insert_with(|| ProxyState::new(None))
        })
    }

    pub fn set_proxy(&self, st: Box<ProxyState>) {
        *self.cold().proxy.borrow_mut() = Some(st);
    }

    /// Runs `f` on the subscription list (taken out of its cell meanwhile).
    fn with_subs<R>(&self, f: impl FnOnce(&mut Subs) -> R) -> R {
        let mut subs = self.subs.take();
        let r = f(&mut subs);
        self.subs.set(subs);
        r
    }

    pub fn sub_state(&self, channel: &str) -> Option<SubState> {
        self.with_subs(|subs| {
            subs.as_slice()
                .iter()
                .find(|(c, _)| &**c == channel)
                .map(|(_, s)| *s)
        })
    }

    /// Live subscriptions (pending or active).
    pub fn sub_count(&self) -> usize {
        self.with_subs(|subs| {
            subs.as_slice()
                .iter()
                .filter(|(_, s)| *s != SubState::Cancelled)
                .count()
        })
    }

    pub fn add_pending(&self, channel: ChannelName) {
        self.with_subs(|subs| subs.push((channel, SubState::Pending)));
    }

    /// The owner confirmed: pending becomes active (true); a cancelled entry is
    /// dropped (false).
    pub fn activate(&self, channel: &str) -> bool {
        self.with_subs(|subs| {
            let Some(pos) = subs
                .as_slice()
                .iter()
                .position(|(c, s)| &**c == channel && *s != SubState::Active)
            else {
                return false;
            };
            let entry = &mut subs.as_mut_slice()[pos];
            if entry.1 == SubState::Pending {
                entry.1 = SubState::Active;
                true
            } else {
                subs.remove(pos);
                false
            }
        })
    }

    /// The broker refused a pending (or cancelled) subscription: forget it.
    pub fn fail_pending(&self, channel: &str) {
        self.with_subs(|subs| {
            if let Some(pos) = subs
                .as_slice()
                .iter()
                .position(|(c, s)| &**c == channel && *s != SubState::Active)
            {
                subs.remove(pos);
            }
        })
    }

    /// Client unsubscribe: returns the state the subscription was in. Active
    /// ones are removed; pending ones become cancelled.
    pub fn unsubscribe(&self, channel: &str) -> Option<SubState> {
        self.with_subs(|subs| {
            let pos = subs
                .as_slice()
                .iter()
                .position(|(c, s)| &**c == channel && *s != SubState::Cancelled)?;
            let state = subs.as_slice()[pos].1;
            match state {
                SubState::Active => subs.remove(pos),
                SubState::Pending => subs.as_mut_slice()[pos].1 = SubState::Cancelled,
                SubState::Cancelled => {}
            }
            Some(state)
        })
    }

    pub fn take_subs(&self) -> Vec<(ChannelName, SubState)> {
        self.with_subs(Subs::take)
    }
}

/// What a session keeps for its proxy calls (only where proxies exist).
#[derive(Default)]
pub struct ProxyState {
    /// The client's request headers some proxy forwards.
    pub headers: Option<Box<Headers>>,
    /// From the connect (or refresh) proxy; sent where a proxy includes it.
    pub meta: Option<Box<RawValue>>,
    /// The client id the connect proxy was told, until the connect is done.
    pub client: Option<Arc<str>>,
    /// A connect proxy call is in flight.
    pub connecting: bool,
    /// A refresh proxy call is in flight.
    pub refreshing: bool,
    /// Subscriptions the server refreshes: channel, expiry (unix seconds),
    /// a call in flight.
    pub sub_expiry: Vec<(ChannelName, u64, bool)>,
    /// The subscribe proxy's `data` for a reply still to go.
    pub sub_data: Vec<(ChannelName, Box<RawValue>)>,
    /// Command lines that came while the connect waited on its proxy.
    pub queued: Vec<Bytes>,
}

impl ProxyState {
    pub fn new(headers: Option<Box<Headers>>) -> Box<Self> {
        Box::new(ProxyState {
            headers,
            ..ProxyState::default()
        })
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

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_as_text() {
        for _ in 0..100 {
            let id = ClientId::random();
            assert!(matches!(id, ClientId::Uuid(_)));
            let text = id.to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(&text[14..15], "4", "{text}");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
            assert_eq!(ClientId::from_text(&text), id);
            assert!(id.is(&text));
            assert_eq!(&*id.to_arc(), text);
        }
        // Anything else is kept as it is, uppercase UUIDs included (they
        // would not come back the same).
        for other in [
            "",
            "client-1",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5b-d9cb-469f-a165-70867728950e-",
            "0f8fad5bxd9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
        ] {
            let id = ClientId::from_text(other);
            assert_eq!(id, ClientId::Other(other.into()), "{other}");
            assert_eq!(id.to_string(), other);
        }
        let kept = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert!(matches!(ClientId::from_text(kept), ClientId::Uuid(_)));
        assert_eq!(ClientId::from_text(kept).to_string(), kept);
    }

    #[test]
    fn a_connection_gets_its_own_client_id() {
        // The same on each call, a v4 UUID, and one per connection id.
        let mut seen = std::collections::HashSet::new();
        for conn in (0..1000u64).chain([u64::MAX, 1 << 32, (1 << 32) | 1]) {
            let id = ClientId::of_conn(conn);
            assert_eq!(id, ClientId::of_conn(conn));
            let text = id.to_string();
            assert_eq!(&text[14..15], "4", "{text}");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
            assert_eq!(ClientId::from_text(&text), id);
            assert!(seen.insert(text), "{conn}");
        }
        // Another thread (another shard) has its own key.
        let here = ClientId::of_conn(7);
        let there = std::thread::spawn(|| ClientId::of_conn(7)).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn anonymous_users_share_one_string() {
        assert!(Arc::ptr_eq(&user_arc(""), &user_arc("")));
        assert_eq!(&*user_arc("u1"), "u1");
    }

    #[test]
    fn client_info_is_built_from_the_identity() {
        let i = Identity {
            client: ClientId::from_text("c-1"),
            user: user_arc("u1"),
            conn_info: Some(r#"{"a":1}"#.into()),
        };
        assert_eq!(
            &i.info()[..],
            br#"{"user":"u1","client":"c-1","conn_info":{"a":1}}"#
        );
        assert_eq!(
            &i.info_with(Some("[2]"))[..],
            br#"{"user":"u1","client":"c-1","conn_info":{"a":1},"chan_info":[2]}"#
        );
    }

    #[test]
    fn subscriptions_past_the_inline_one() {
        let s = Session::new(Rc::new(Conn::new(1, 0)));
        for ch in ["a", "b", "c"] {
            s.add_pending(ch.into());
        }
        assert!(s.activate("b"));
        assert_eq!(s.sub_state("a"), Some(SubState::Pending));
        assert_eq!(s.sub_state("b"), Some(SubState::Active));
        assert_eq!(s.unsubscribe("a"), Some(SubState::Pending));
        assert!(!s.activate("a"), "the cancelled one is undone");
        assert_eq!(s.sub_count(), 2);
        let names: Vec<_> = s.take_subs().into_iter().map(|(c, _)| c).collect();
        assert_eq!(names, ["b".into(), "c".into()] as [ChannelName; 2]);
        assert_eq!(s.sub_count(), 0);
    }

    #[test]
    fn the_list_shrinks_back_inline() {
        let mut subs = Subs::Inline(None);
        for ch in ["a", "b", "c"] {
            subs.push((ch.into(), SubState::Active));
        }
        assert!(matches!(&subs, Subs::Heap(b) if b.len() == 3));
        subs.remove(0);
        assert_eq!(&*subs.as_slice()[1].0, "c");
        subs.remove(0);
        assert!(matches!(&subs, Subs::Inline(Some((c, _))) if &**c == "c"));
        subs.remove(0);
        assert!(matches!(subs, Subs::Inline(None)));
    }

    /// The sizes behind docs/why-subscribed-memory.md (printed with
    /// `cargo test -p ringcast sizes -- --nocapture`); the asserts keep the
    /// session from growing back unnoticed.
    #[test]
    fn sizes() {
        use std::mem::size_of;
        let rows = [
            ("Session", size_of::<Session>()),
            ("Who", size_of::<Who>()),
            ("full", size_of::<Cell<Option<Box<Identity>>>>()),
            ("Identity", size_of::<Identity>()),
            ("ClientId", size_of::<ClientId>()),
            ("Subs", size_of::<Subs>()),
            ("Cold", size_of::<Cold>()),
            ("Conn", size_of::<Conn>()),
        ];
        for (name, size) in rows {
            println!("{name:10} {size:4} B");
        }
        // glibc gives an allocation of n bytes a chunk of n + 8 rounded up
        // to 16. Rc's two counts come on top of the struct: `Rc<Session>`
        // is 72 B, an 80 B chunk (session 12; it was 88 B, 96).
        assert_eq!(size_of::<Session>(), 56);
        assert_eq!(size_of::<Who>(), 1);
        assert_eq!(size_of::<Subs>(), 24);
        // A boxed identity or cold part: a 64 B chunk each.
        assert!(size_of::<Identity>() <= 56, "{}", size_of::<Identity>());
        assert!(size_of::<Cold>() <= 56, "{}", size_of::<Cold>());
        // `Rc<Conn>`: 88 B, a 96 B chunk (session 11; it was 104 B, 112).
        assert!(size_of::<Conn>() + 16 <= 88, "{}", size_of::<Conn>());
        assert!(size_of::<ClientId>() <= 24);
    }

    fn kind(s: &Session) -> &'static str {
        let full = s.full.take();
        let k = match (s.who.get(), &full) {
            (Who::Unconnected, None) => "unconnected",
            (Who::Anonymous, None) => "anonymous",
            (Who::Full, Some(_)) => "full",
            (Who::Lent, None) => "lent",
            (who, full) => panic!("{who:?} with {full:?}"),
        };
        s.full.set(full);
        k
    }

    #[test]
    fn identities_anonymous_inline_others_boxed() {
        let s = Session::new(Rc::new(Conn::new(1, 0)));
        assert!(!s.is_connected());
        assert_eq!(s.client_id(), None);
        assert_eq!(s.with_identity(|_| ()), None);
        // Another UUID than the connection's own: kept boxed.
        s.set_identity(Identity {
            client: ClientId::random(),
            user: user_arc(""),
            conn_info: None,
        });
        assert_eq!(kind(&s), "full");
        let anon = s.own_client_id();
        s.set_identity(Identity {
            client: anon.clone(),
            user: user_arc(""),
            conn_info: None,
        });
        assert_eq!(kind(&s), "anonymous");
        assert!(s.is_connected());
        assert_eq!(s.user().as_deref(), Some(""));
        assert_eq!(s.client_id().as_deref(), Some(&*anon.to_string()));
        assert_eq!(
            s.with_identity(|i| (i.user.to_string(), i.conn_info.is_none())),
            Some((String::new(), true))
        );
        // A user, a conn_info or another kind of client id: boxed.
        for (client, user, info) in [
            (anon.clone(), "u1", None),
            (anon.clone(), "", Some(r#"{"a":1}"#)),
            (ClientId::from_text("c-1"), "", None),
        ] {
            s.set_identity(Identity {
                client: client.clone(),
                user: user_arc(user),
                conn_info: info.map(Into::into),
            });
            assert_eq!(kind(&s), "full");
            assert!(s.is_connected());
            assert_eq!(s.user().as_deref(), Some(user));
            let got = s.with_identity(|i| {
                // Within the call: still connected.
                assert!(s.is_connected());
                (i.client.clone(), i.user.to_string(), i.conn_info.clone())
            });
            assert_eq!(got, Some((client, user.to_string(), info.map(Into::into))));
            // Put back after the call.
            assert!(s.with_identity(|_| ()).is_some());
        }
    }

    #[test]
    #[should_panic(expected = "within with_identity")]
    fn a_lent_identity_is_not_lent_twice() {
        let s = Session::new(Rc::new(Conn::new(1, 0)));
        s.set_identity(Identity {
            client: ClientId::from_text("c-1"),
            user: user_arc("u1"),
            conn_info: None,
        });
        s.with_identity(|_| s.client_id());
    }

    #[test]
    fn the_cold_part_is_allocated_by_its_first_use() {
        let s = Session::new(Rc::new(Conn::new(1, 0)));
        s.set_identity(Identity {
            client: s.own_client_id(),
            user: user_arc(""),
            conn_info: None,
        });
        assert_eq!(kind(&s), "anonymous");
        s.set_expires_at(5);
        s.add_pending("a".into());
        assert!(s.proxy().is_none() && s.proxy_ref().is_none());
        assert!(!s.is_connect_pending() && s.transport_session().is_none());
        assert!(
            s.cold.get().is_none(),
            "an anonymous subscribed client has none"
        );
        s.rate().set((1, 2));
        assert!(s.cold.get().is_some());
        assert!(s.proxy().is_none(), "a rate limit makes no proxy state");
        s.proxy_or_new().connecting = true;
        assert!(s.proxy_ref().is_some_and(|p| p.connecting));
        let t = Session::with_transport_session(Rc::new(Conn::new(2, 0)), Some("0.x".into()));
        assert_eq!(t.transport_session(), Some("0.x"));
    }
}
