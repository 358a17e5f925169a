//! `ringcast config check FILE`: prints the effective configuration (file,
//! then `RINGCAST_*` environment on top) as TOML with secrets redacted, or
//! exits non-zero naming the key at fault.
mod common;

use std::process::{Command, Output};

use common::TempFile;
use ringcast::config::Config;

/// Runs `ringcast config check FILE` with only the given `RINGCAST_*`
/// variables (any inherited ones are removed).
fn check(toml: &str, env: &[(&str, &str)]) -> Output {
    let file = TempFile::new("check.toml", toml);
    check_path(file.path_str(), env)
}

fn check_path(path: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    cmd.args(["config", "check", path]);
    for (k, _) in std::env::vars() {
        if k.starts_with("RINGCAST_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ringcast config check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> toml::Table {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o).parse().expect("config check prints TOML")
}

const FULL: &str = r#"
[server]
address = "127.0.0.1"
port = 8123
shards = 3
pin = false
max_connections = 5000
handshake_timeout = 2.5
max_message = 32768

[client]
ping_interval = 7
pong_timeout = 2.0
max_queue = 65536
commands_per_second = 50
max_connections_per_user = 4

[api]
port = 9123
key = "hunter2-api-key"
publisher_port = 9124

[auth]
token_hmac_secret_key = "s3cret-hmac"
subscription_token_hmac_secret_key = "s3cret-sub"
token_audience = "ringcast"
token_leeway_secs = 3

[channel]
presence = true

[namespace.chat]
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 10
history_ttl = 120
force_recovery = true

[namespace.ro]
allow_subscribe_for_client = true
"#;

#[test]
fn valid_file_round_trips_with_secrets_redacted() {
    let out = check(FULL, &[]);
    let t = ok(&out);
    let text = stdout(&out);
    for secret in ["hunter2-api-key", "s3cret-hmac", "s3cret-sub"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert_eq!(t["api"]["key"].as_str(), Some("<redacted>"), "{text}");
    assert_eq!(
        t["auth"]["token_hmac_secret_key"].as_str(),
        Some("<redacted>")
    );
    assert_eq!(
        t["auth"]["subscription_token_hmac_secret_key"].as_str(),
        Some("<redacted>")
    );
    // Everything else is the file's value (and defaults for the rest).
    assert_eq!(t["server"]["address"].as_str(), Some("127.0.0.1"));
    assert_eq!(t["server"]["port"].as_integer(), Some(8123));
    assert_eq!(t["server"]["shards"].as_integer(), Some(3));
    assert_eq!(t["server"]["pin"].as_bool(), Some(false));
    assert_eq!(t["server"]["handshake_timeout"].as_float(), Some(2.5));
    assert_eq!(t["client"]["ping_interval"].as_integer(), Some(7));
    assert_eq!(t["client"]["commands_per_second"].as_integer(), Some(50));
    assert_eq!(t["client"]["max_subscriptions"].as_integer(), Some(128));
    assert_eq!(t["api"]["publisher_port"].as_integer(), Some(9124));
    assert_eq!(t["auth"]["token_audience"].as_str(), Some("ringcast"));
    assert_eq!(t["auth"]["token_leeway_secs"].as_integer(), Some(3));
    assert_eq!(t["channel"]["presence"].as_bool(), Some(true));
    assert_eq!(
        t["namespace"]["chat"]["history_size"].as_integer(),
        Some(10)
    );
    assert_eq!(
        t["namespace"]["chat"]["history_ttl"].as_float(),
        Some(120.0)
    );
    assert_eq!(
        t["namespace"]["chat"]["force_recovery"].as_bool(),
        Some(true)
    );
    assert_eq!(
        t["namespace"]["ro"]["allow_publish_for_client"].as_bool(),
        Some(false)
    );

    // The output is itself a valid configuration with the same values,
    // and checking it again prints the same text.
    let back = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let orig = Config::from_toml(FULL).unwrap();
    assert_eq!(back.server.port, orig.server.port);
    assert_eq!(back.server.address, orig.server.address);
    assert_eq!(back.client.pong_timeout, orig.client.pong_timeout);
    assert_eq!(back.client.max_queue, orig.client.max_queue);
    assert_eq!(back.channel, orig.channel);
    assert_eq!(back.namespace, orig.namespace);
    assert_eq!(back.to_toml(), text);
    let again = check(&text, &[]);
    assert_eq!(stdout(&again), text);
}

#[test]
fn broker_section_from_file_and_environment_with_passwords_redacted() {
    let out = check(
        "[broker]\ntype = \"redis\"\naddresses = [\"redis://:s3cret@10.0.0.5:6379/2\"]\n",
        &[
            ("RINGCAST_NODE_NAME", "node-7"),
            ("RINGCAST_REDIS_PREFIX", "app1"),
        ],
    );
    let text = stdout(&out);
    let t = ok(&out);
    let b = t["broker"].as_table().expect("[broker]");
    assert_eq!(b["type"].as_str(), Some("redis"));
    assert_eq!(b["node_name"].as_str(), Some("node-7"));
    assert_eq!(b["prefix"].as_str(), Some("app1"));
    assert_eq!(
        b["addresses"].as_array().unwrap()[0].as_str(),
        Some("redis://***@10.0.0.5:6379/2")
    );
    assert!(!text.contains("s3cret"), "{text}");
    // Several addresses through the environment, comma-separated.
    let out = check(
        "[broker]\ntype = \"redis\"\n",
        &[("RINGCAST_REDIS_ADDRESS", "redis://a:1,redis://b:2")],
    );
    let t = ok(&out);
    let addrs = t["broker"]["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[1].as_str(), Some("redis://b:2"));
    // A Redis Cluster's seed nodes, redacted too.
    let out = check(
        "[broker]\ntype = \"redis\"\n",
        &[(
            "RINGCAST_REDIS_CLUSTER_ADDRESS",
            "redis://:pw9@c1:7000,redis://c2:7001",
        )],
    );
    let text = stdout(&out);
    let seeds = ok(&out)["broker"]["cluster_addresses"].clone();
    let seeds = seeds.as_array().unwrap();
    assert_eq!(seeds.len(), 2);
    assert_eq!(seeds[0].as_str(), Some("redis://***@c1:7000"));
    assert!(!text.contains("pw9"), "{text}");
}

#[test]
fn empty_file_prints_the_defaults() {
    let t = ok(&check("", &[]));
    assert_eq!(t["server"]["port"].as_integer(), Some(8000));
    assert_eq!(t["api"]["port"].as_integer(), Some(9000));
    assert_eq!(t["client"]["insecure"].as_bool(), Some(false));
    assert_eq!(t["client"]["ping_interval"].as_integer(), Some(25));
    assert!(t["api"].get("key").is_none());
}

#[test]
fn unknown_keys_and_bad_values_fail_naming_the_key() {
    let cases = [
        ("[server]\nprot = 1\n", "prot"),
        ("[nope]\nx = 1\n", "nope"),
        ("[namespace.chat]\nallow_publish = true\n", "allow_publish"),
        ("[auth]\ntoken_hmac_secret = \"x\"\n", "token_hmac_secret"),
        ("[client]\nping_interval = \"soon\"\n", "ping_interval"),
        ("[client]\nping_interval = 0\n", "client.ping_interval"),
        ("[client]\npong_timeout = -1.0\n", "client.pong_timeout"),
        ("[server]\nport = 70000\n", "port"),
        ("[server]\naddress = \"not-an-ip\"\n", "address"),
        ("[server]\ndriver = \"kqueue\"\n", "driver"),
        ("[namespace.chat]\nhistory_size = 10\n", "namespace.chat"),
        (
            "[namespace.chat]\nforce_recovery = true\n",
            "namespace.chat.force_recovery",
        ),
        ("[namespace.\"bad name\"]\n", "namespace.bad name"),
        ("[server\nport = 1\n", "line"),
        ("[broker]\ntype = \"redis\"\n", "broker.addresses"),
        ("[broker]\ntype = \"rabbit\"\n", "type"),
        (
            "[broker]\ntype = \"redis\"\naddresses = [\"rediss://h:6380\"]\n",
            "TLS (rediss://) is not supported",
        ),
        (
            "[broker]\ntype = \"redis\"\naddresses = [\"127.0.0.1:6379\"]\n",
            "broker.addresses",
        ),
        (
            "[broker]\ntype = \"redis\"\nsentinel_addresses = [\"127.0.0.1:26379\"]\n",
            "broker.sentinel_master",
        ),
        (
            "[broker]\ntype = \"redis\"\naddresses = [\"redis://h:1\"]\nprefix = \"a{b}\"\n",
            "broker.prefix",
        ),
        (
            "[broker]\ntype = \"redis\"\naddresses = [\"redis://h:1\"]\ncluster_addresses = [\"redis://c:7000\"]\n",
            "broker.cluster_addresses",
        ),
        (
            "[broker]\ntype = \"redis\"\ncluster_addresses = [\"c:7000\"]\n",
            "broker.cluster_addresses",
        ),
    ];
    for (toml, key) in cases {
        let out = check(toml, &[]);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{toml:?} accepted:\n{}",
            stdout(&out)
        );
        assert!(err.contains(key), "{toml:?}: {key:?} not named in:\n{err}");
        assert!(stdout(&out).is_empty(), "{toml:?}: {}", stdout(&out));
    }
    let out = check_path("/nonexistent/ringcast.toml", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/ringcast.toml"));
}

#[test]
fn environment_overrides_the_file() {
    let out = check(
        FULL,
        &[
            ("RINGCAST_PORT", "1234"),
            ("RINGCAST_SHARDS", "2"),
            ("RINGCAST_PING_INTERVAL", "3"),
            ("RINGCAST_INSECURE", "true"),
            ("RINGCAST_API_PORT", "4321"),
            ("RINGCAST_API_KEY", "env-api-key"),
            ("RINGCAST_TOKEN_HMAC_SECRET_KEY", "env-hmac"),
        ],
    );
    let t = ok(&out);
    let text = stdout(&out);
    assert_eq!(t["server"]["port"].as_integer(), Some(1234), "{text}");
    assert_eq!(t["server"]["shards"].as_integer(), Some(2));
    assert_eq!(t["client"]["ping_interval"].as_integer(), Some(3));
    assert_eq!(t["client"]["insecure"].as_bool(), Some(true));
    assert_eq!(t["api"]["port"].as_integer(), Some(4321));
    // Untouched by the environment: the file's.
    assert_eq!(t["api"]["publisher_port"].as_integer(), Some(9124));
    assert_eq!(t["client"]["commands_per_second"].as_integer(), Some(50));
    // Secrets from the environment are redacted too.
    assert!(!text.contains("env-api-key") && !text.contains("env-hmac"));
    assert_eq!(t["api"]["key"].as_str(), Some("<redacted>"));

    // Without the file's value: the environment's on top of the default.
    let t = ok(&check("", &[("RINGCAST_PORT", "1234")]));
    assert_eq!(t["server"]["port"].as_integer(), Some(1234));

    // A bad environment value fails, naming the option.
    let out = check(FULL, &[("RINGCAST_PORT", "not-a-port")]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("port"), "{}", stderr(&out));
    // An environment value that parses but is invalid is caught by validation.
    let out = check(FULL, &[("RINGCAST_PING_INTERVAL", "0")]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("client.ping_interval"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn environment_false_overrides_a_true_in_the_file() {
    let file = "[client]\ninsecure = true\n[api]\ninsecure = true\n[channel]\npresence = true\n";
    let t = ok(&check(
        file,
        &[
            ("RINGCAST_INSECURE", "false"),
            ("RINGCAST_API_INSECURE", "false"),
            ("RINGCAST_PRESENCE", "false"),
        ],
    ));
    assert_eq!(t["client"]["insecure"].as_bool(), Some(false));
    assert_eq!(t["api"]["insecure"].as_bool(), Some(false));
    assert_eq!(t["channel"]["presence"].as_bool(), Some(false));
}
