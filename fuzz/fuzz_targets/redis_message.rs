//! What nodes send each other through Redis (engine/src/broker/redis/wire.rs)
//! over arbitrary bytes: a channel message or a control message. Parsing must
//! never panic; a parsed publication must rebuild the same bytes and give a
//! publication object with its offset that is still one JSON-shaped object;
//! a parsed control message must rebuild the same bytes. The same bytes as a
//! Redis Cluster's replies (engine/src/broker/redis/cluster.rs): a CLUSTER
//! SLOTS reply parses or is refused without panicking, every range it gives
//! is in order and belongs to its master; a CLIENT INFO line's `ssub` and
//! a key's slot never panic, and the slot is below 16384.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::broker::redis::cluster;
use ringcast::broker::redis::wire::{self, ChannelMsg, ControlKind, ControlMsg};

fuzz_target!(|data: &[u8]| {
    if let Some(masters) = cluster::parse_slots_reply(data) {
        for m in &masters {
            for &(a, b) in &m.ranges {
                if a <= b {
                    assert!(m.owns(a) && m.owns(b));
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cluster::ssub_of(text);
    }
    assert!(cluster::slot_of(data) < 16384);
    if let Ok(msg) = wire::parse_channel_msg(data) {
        match msg {
            ChannelMsg::Publication {
                offset,
                epoch,
                object,
            } => {
                let rebuilt = [
                    format!("p{offset}:{epoch}:").as_bytes(),
                    object,
                ]
                .concat();
                // Only the canonical form parses: it rebuilds exactly.
                assert_eq!(rebuilt, data);
                let with = wire::with_offset(object, offset);
                assert_eq!(with.first(), Some(&b'{'));
                assert_eq!(with.last(), Some(&b'}'));
                assert!(with.len() >= object.len());
            }
            ChannelMsg::Join(info) | ChannelMsg::Leave(info) => {
                assert_eq!(info, &data[1..]);
                let join = data[0] == b'j';
                assert_eq!(&wire::join_leave(join, info)[..], data);
            }
        }
    }
    let (kind, node, json) = match wire::parse_control(data) {
        Ok(ControlMsg::Heartbeat { node, json }) => (ControlKind::Heartbeat, node, json),
        Ok(ControlMsg::Action { node, json }) => (ControlKind::Action, node, json),
        Ok(ControlMsg::Question { node, json }) => (ControlKind::Question, node, json),
        Ok(ControlMsg::Answer { node, json }) => (ControlKind::Answer, node, json),
        Err(_) => return,
    };
    assert_eq!(&wire::control(kind, node, json)[..], data);
});
