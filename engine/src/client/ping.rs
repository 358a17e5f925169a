//! Server pings: every ping interval each connected client gets `{}`; one that
//! has not answered within the pong timeout is closed with 3012. A connection
//! that never sends `connect` is closed as stale (3502).

use bytes::Bytes;

use super::ClientService;
use crate::protocol::codes;
use crate::shard::framing::FrameSet;
use crate::ws::frame::{encode, OpCode};

pub async fn sweep_loop(svc: ClientService) {
    let (hub, opts) = (svc.hub.clone(), svc.options().clone());
    let refresh_proxy = svc.refresh_proxy();
    let ping: Bytes = encode(OpCode::Text, b"{}");
    let pong_timeout = opts.pong_timeout.min(opts.ping_interval / 2);
    loop {
        monoio::time::sleep(opts.ping_interval - pong_timeout).await;
        let pings = FrameSet::new(&ping);
        let sessions = super::registry::Registry::of(&hub).all();
        let now = crate::auth::unix_now();
        for s in &sessions {
            let expires = s.expires_at();
            if s.is_connected() && expires > 0 && now >= expires {
                match refresh_proxy {
                    // The server refreshes: ask the application's backend.
                    Some(p) => svc.proxy_refresh(s, p),
                    // Credentials ran out without a refresh (Centrifugo: 3005).
                    None => s.conn.close_with(
                        codes::CONNECTION_EXPIRED.code,
                        codes::CONNECTION_EXPIRED.reason,
                    ),
                }
            }
            if s.is_connected() {
                if s.conn.is_closing() {
                    continue;
                }
                svc.proxy_sub_refresh_due(s, now);
                // Unidirectional clients get pings and never answer them.
                s.awaiting_pong.set(!s.conn.framing().is_unidirectional());
                s.conn.send_set(&pings);
            } else if !svc.proxy_connecting(s) {
                // (One waiting for the connect proxy is not stale: the
                // proxy's timeout bounds that wait.)
                let n = s.unconnected_sweeps.get() + 1;
                s.unconnected_sweeps.set(n);
                if n >= 2 {
                    s.conn.close_with(codes::STALE.code, codes::STALE.reason);
                }
            }
        }
        monoio::time::sleep(pong_timeout).await;
        for s in &sessions {
            if s.is_connected() && s.awaiting_pong.get() && !s.conn.is_closing() {
                s.conn
                    .close_with(codes::NO_PONG.code, codes::NO_PONG.reason);
            }
        }
    }
}
