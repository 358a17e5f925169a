//! The Lua scripts, each one atomic step on one channel's keys (all in one
//! Cluster slot). Semantics follow Centrifugo's Redis engine: the offset is
//! the stream entry id, the epoch lives in the meta hash and changes when
//! the meta is gone (Redis lost its data), so a client can never mistake a
//! new stream for the one it knew.

/// KEYS: stream, meta. ARGV: publication, history size, history ttl (s),
/// pubsub channel, meta ttl (s, 0: none), epoch for a new stream, the
/// publish command (`publish`, or `spublish` in a Cluster).
/// Returns {offset, epoch}.
pub const PUBLISH: &str = r#"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('hset', KEYS[2], 'e', epoch)
  redis.call('del', KEYS[1])
end
local offset = redis.call('hincrby', KEYS[2], 's', 1)
if ARGV[5] ~= '0' then redis.call('expire', KEYS[2], ARGV[5]) end
redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], offset, 'd', ARGV[1])
redis.call('expire', KEYS[1], ARGV[3])
redis.call(ARGV[7], ARGV[4], 'p' .. offset .. ':' .. epoch .. ':' .. ARGV[1])
return {offset, epoch}
"#;

/// KEYS: stream, meta. ARGV: epoch for a new stream, meta ttl, from (stream
/// id or '-' / '+'), to, count (0: all, -1: none), reverse ('1').
/// Returns {top offset, epoch, entries}: the position and the range read.
pub const READ: &str = r#"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[2], 'e', epoch)
  if ARGV[2] ~= '0' then redis.call('expire', KEYS[2], ARGV[2]) end
  redis.call('del', KEYS[1])
end
local top = redis.call('hget', KEYS[2], 's')
if not top then top = '0' end
local entries = {}
if ARGV[5] ~= '-1' then
  local cmd = 'xrange'
  if ARGV[6] == '1' then cmd = 'xrevrange' end
  if ARGV[5] == '0' then
    entries = redis.call(cmd, KEYS[1], ARGV[3], ARGV[4])
  else
    entries = redis.call(cmd, KEYS[1], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
  end
end
return {tonumber(top), epoch, entries}
"#;

/// KEYS: presence data, presence expire. ARGV: ttl (s), now (s), client,
/// info, pubsub channel ('' : no join push), join message, publish command.
pub const PRESENCE_ADD: &str = r#"
redis.call('hset', KEYS[1], ARGV[3], ARGV[4])
redis.call('zadd', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[1]), ARGV[3])
redis.call('expire', KEYS[1], ARGV[1])
redis.call('expire', KEYS[2], ARGV[1])
if ARGV[5] ~= '' then redis.call(ARGV[7], ARGV[5], ARGV[6]) end
return 1
"#;

/// KEYS: presence data, presence expire. ARGV: client, pubsub channel (''
/// : no leave push), publish command. Publishes `l<info>` when the client
/// was present.
pub const PRESENCE_REMOVE: &str = r#"
local info = redis.call('hget', KEYS[1], ARGV[1])
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
if info and ARGV[2] ~= '' then redis.call(ARGV[3], ARGV[2], 'l' .. info) end
return 1
"#;

/// KEYS: presence data, presence expire. ARGV: ttl, now, clients... Moves the
/// expiry of clients still present (a node's periodic refresh).
pub const PRESENCE_TOUCH: &str = r#"
local at = tonumber(ARGV[2]) + tonumber(ARGV[1])
for i = 3, #ARGV do
  if redis.call('hexists', KEYS[1], ARGV[i]) == 1 then
    redis.call('zadd', KEYS[2], at, ARGV[i])
  end
end
redis.call('expire', KEYS[1], ARGV[1])
redis.call('expire', KEYS[2], ARGV[1])
return 1
"#;

/// KEYS: presence data, presence expire. ARGV: now. Drops expired entries
/// (a dead node's clients) and returns the rest as a flat hash.
pub const PRESENCE_GET: &str = r#"
local gone = redis.call('zrangebyscore', KEYS[2], '0', ARGV[1])
for _, c in ipairs(gone) do redis.call('hdel', KEYS[1], c) end
redis.call('zremrangebyscore', KEYS[2], '0', ARGV[1])
return redis.call('hgetall', KEYS[1])
"#;
