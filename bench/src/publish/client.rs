//! Publishing with the client protocol: `{"id":N,"publish":{"channel":…,"data":…}}`
//! on a logged-in WebSocket connection, acknowledged by `{"id":N,"publish":{}}`.

use super::Ack;
use crate::centrifuge::{classify, publish_cmd, Line};
use crate::scenario::{centrifuge_login, Plan};
use crate::transport::{Conn, Incoming};
use crate::worker::Hand;

pub struct ClientPublisher {
    /// WebSocket whatever the subscribers' transport.
    c: Conn,
    next_id: u64,
    cmd: Vec<u8>,
}

impl ClientPublisher {
    pub async fn open(h: &mut Hand, index: usize, plan: &Plan) -> Option<ClientPublisher> {
        let token = plan.token.clone();
        let c = h
            .dial(index, |c| async move {
                centrifuge_login(Conn::Ws(c), token.as_deref(), &[]).await
            })
            .await?;
        Some(ClientPublisher {
            c,
            // 1 was the connect command.
            next_id: 2,
            cmd: Vec::with_capacity(256),
        })
    }

    pub fn queue(&mut self, channel: &str, data: &[u8]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.cmd.clear();
        publish_cmd(&mut self.cmd, id, channel, data);
        self.c.queue(&self.cmd);
        id
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.c.flush().await
    }

    pub async fn read_acks(&mut self, acks: &mut Vec<Ack>) -> anyhow::Result<()> {
        if self.c.read_some(64 << 10).await? == 0 {
            anyhow::bail!("server closed the publisher connection");
        }
        while let Some(m) = self.c.next()? {
            match m {
                Incoming::Text(t) => {
                    for line in t.lines() {
                        match classify(line) {
                            Line::Reply { id, error } => acks.push(Ack { id, ok: !error }),
                            Line::Ping => self.c.pong(),
                            _ => {}
                        }
                    }
                }
                Incoming::Closed { why, .. } => anyhow::bail!("publisher: {why}"),
                Incoming::Binary => {}
            }
        }
        // Pongs (WebSocket or Centrifugo) stay queued for the next flush.
        Ok(())
    }

    pub async fn close(self) {
        self.c.close().await
    }
}
