//! Unit tests of the pieces; end-to-end token cases live in
//! `engine/tests/auth_tokens.rs`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::claims::{lifetime, ttl};
use super::*;
use crate::protocol::codes;

const SECRET: &str = "unit-secret";
const NOW: u64 = 1_700_000_000;

fn hmac_verifier() -> Verifier {
    Verifier::new(&AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        ..Default::default()
    })
    .unwrap()
}

fn hs256(claims: &serde_json::Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A token with a hand-made header and payload, HS256-signed with SECRET.
fn signed_raw(header: &str, payload: &str) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

#[test]
fn config_from_toml_with_defaults() {
    let cfg: AuthConfig = toml::from_str(
        r#"
        token_hmac_secret_key = "s"
        token_audience = "ringcast"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.token_hmac_secret_key.as_deref(), Some("s"));
    assert_eq!(cfg.token_audience.as_deref(), Some("ringcast"));
    assert_eq!(cfg.token_leeway_secs, 0);
    assert!(!cfg.require_sub);
    assert!(cfg.token_rsa_public_key.is_none());
    let empty: AuthConfig = toml::from_str("").unwrap();
    assert_eq!(empty, AuthConfig::default());
}

#[test]
fn debug_never_prints_secrets() {
    let cfg = AuthConfig {
        token_hmac_secret_key: Some("super-secret-value".into()),
        subscription_token_hmac_secret_key: Some("other-secret-value".into()),
        ..Default::default()
    };
    let shown = format!("{cfg:?} {:?}", Verifier::new(&cfg).unwrap());
    assert!(!shown.contains("secret-value"), "{shown}");
    assert!(shown.contains("<set>"));
    assert!(shown.contains("HS256"));
}

#[test]
fn no_keys_is_a_config_error() {
    assert_eq!(
        Verifier::new(&AuthConfig::default()).unwrap_err(),
        ConfigError::NoKeys
    );
    // Empty strings count as unset.
    let cfg = AuthConfig {
        token_hmac_secret_key: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(Verifier::new(&cfg).unwrap_err(), ConfigError::NoKeys);
}

#[test]
fn algorithms_follow_keys() {
    let v = hmac_verifier();
    assert_eq!(
        v.allowed_algorithms(),
        &[Alg::HS256, Alg::HS384, Alg::HS512]
    );
    assert_eq!(v.subscription_algorithms(), v.allowed_algorithms());
    for a in Alg::ALL {
        assert_eq!(Alg::from_header(a.as_str()), Some(a));
    }
    assert_eq!(Alg::from_header("none"), None);
    assert_eq!(Alg::from_header("hs256"), None);
    assert_eq!(Alg::from_header("ES512"), None);
}

#[test]
fn numeric_dates_accept_any_number_and_null() {
    let v = hmac_verifier();
    // A fractional exp is floored: 1700000000.9 → 1700000000 == NOW → expired.
    let t = hs256(&json!({"sub": "u", "exp": 1_700_000_000.9_f64}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let t = hs256(&json!({"sub": "u", "exp": 1_700_000_001.5_f64}));
    assert_eq!(v.verify_connect(&t, NOW).unwrap().token_exp, Some(NOW + 1));
    // null is absent.
    let t = hs256(&json!({"sub": "u", "exp": null, "iat": null, "expire_at": null}));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!((c.token_exp, c.expires_at, c.issued_at), (None, None, None));
    // A string date is a claims error, like a numeric sub.
    for bad in [
        json!({"sub": "u", "exp": "1700000100"}),
        json!({"sub": 42}),
        json!({"sub": "u", "channels": "news"}),
        json!({"sub": "u", "aud": 5}),
    ] {
        assert_eq!(
            v.verify_connect(&hs256(&bad), NOW),
            Err(TokenError::Invalid(InvalidReason::BadClaims)),
            "{bad}"
        );
    }
    // Huge and negative values do not overflow.
    let t = hs256(&json!({"sub": "u", "exp": u64::MAX, "nbf": i64::MIN}));
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap().expires_at,
        Some(i64::MAX as u64)
    );
    let t = hs256(&json!({"sub": "u", "exp": -5}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let t = hs256(&json!({"sub": "u", "exp": 1e300}));
    assert!(v.verify_connect(&t, NOW).is_ok());
}

#[test]
fn payload_must_be_an_object_with_unique_claims() {
    let v = hmac_verifier();
    let hdr = r#"{"alg":"HS256","typ":"JWT"}"#;
    for payload in [
        "[]",
        r#"["a"]"#,
        "\"x\"",
        "42",
        "{",
        "",
        r#"{"sub":"a","sub":"b"}"#,
    ] {
        assert_eq!(
            v.verify_connect(&signed_raw(hdr, payload), NOW),
            Err(TokenError::Invalid(InvalidReason::BadClaims)),
            "{payload}"
        );
    }
    // Unknown claims are ignored.
    let t = signed_raw(hdr, r#"{"sub":"a","whatever":{"x":[1,2]}}"#);
    assert_eq!(v.verify_connect(&t, NOW).unwrap().user, "a");
}

#[test]
fn header_rules() {
    let v = hmac_verifier();
    let p = r#"{"sub":"a"}"#;
    assert!(v
        .verify_connect(&signed_raw(r#"{"alg":"HS256"}"#, p), NOW)
        .is_ok());
    let cases = [
        (
            r#"{"alg":"HS256","crit":["exp"]}"#,
            InvalidReason::UnsupportedHeader,
        ),
        (r#"{"typ":"JWT"}"#, InvalidReason::Malformed),
        (r#"{"alg":256}"#, InvalidReason::Malformed),
        (r#"{"alg":"HS256","alg":"none"}"#, InvalidReason::Malformed),
        ("[]", InvalidReason::Malformed),
        (r#"["HS256"]"#, InvalidReason::Malformed),
        (r#"{"alg":"none"}"#, InvalidReason::AlgorithmNotAllowed),
        (r#"{"alg":"PS256"}"#, InvalidReason::AlgorithmNotAllowed),
        (r#"{"alg":"RS256"}"#, InvalidReason::AlgorithmNotAllowed),
    ];
    for (h, want) in cases {
        assert_eq!(
            v.verify_connect(&signed_raw(h, p), NOW),
            Err(TokenError::Invalid(want)),
            "{h}"
        );
    }
}

#[test]
fn audience_string_or_array() {
    let v = Verifier::new(&AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        token_audience: Some("rc".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(v.verify_connect(&hs256(&json!({"aud": "rc"})), NOW).is_ok());
    assert!(v
        .verify_connect(&hs256(&json!({"aud": ["x", "rc"]})), NOW)
        .is_ok());
    for aud in [json!("x"), json!([]), json!(["x", "y"]), json!(null)] {
        assert_eq!(
            v.verify_connect(&hs256(&json!({ "aud": aud })), NOW),
            Err(TokenError::Invalid(InvalidReason::Audience)),
            "{aud}"
        );
    }
}

#[test]
fn info_raw_and_b64() {
    let v = hmac_verifier();
    // Kept verbatim, key order and spacing included.
    let t = signed_raw(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"u","info":{"name":"Ann", "n":[1,2]}}"#,
    );
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap().info.as_deref(),
        Some(r#"{"name":"Ann", "n":[1,2]}"#)
    );
    use base64::engine::general_purpose::STANDARD;
    let t = hs256(&json!({"sub": "u", "b64info": STANDARD.encode(r#"{"a":1}"#)}));
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap().info.as_deref(),
        Some(r#"{"a":1}"#)
    );
    // b64info wins over info, as in Centrifugo.
    let t = hs256(&json!({"sub": "u", "info": {"x": 1}, "b64info": STANDARD.encode("[1]")}));
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap().info.as_deref(),
        Some("[1]")
    );
    for bad in ["%%%", &STANDARD.encode("not json")] {
        let t = hs256(&json!({"sub": "u", "b64info": bad}));
        assert_eq!(
            v.verify_connect(&t, NOW),
            Err(TokenError::Invalid(InvalidReason::BadInfo))
        );
    }
}

#[test]
fn subs_take_precedence_over_channels() {
    let v = hmac_verifier();
    let t = hs256(&json!({"sub": "u", "channels": ["a", "b"]}));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.channels, ["a", "b"]);
    assert!(c.subs.is_empty());
    let t = hs256(&json!({
        "sub": "u",
        "channels": ["ignored"],
        "subs": {"z": {"info": {"k": 1}}, "m": {"data": "hi"}, "a": {}},
        "meta": {"plan": "pro"}
    }));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.channels, ["a", "m", "z"]);
    assert_eq!(c.subs[1].data.as_deref(), Some("\"hi\""));
    assert_eq!(c.subs[2].info.as_deref(), Some(r#"{"k":1}"#));
    assert_eq!(c.meta.as_deref(), Some(r#"{"plan":"pro"}"#));
}

#[test]
fn connection_token_must_not_carry_channel() {
    let v = hmac_verifier();
    let t = hs256(&json!({"sub": "u", "channel": "news"}));
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(TokenError::Invalid(InvalidReason::ChannelInConnectToken))
    );
    // And a connection token is no subscription token.
    let t = hs256(&json!({"sub": "u"}));
    assert_eq!(
        v.verify_subscription(&t, "u", "c", "news", NOW),
        Err(TokenError::Invalid(InvalidReason::MissingChannel))
    );
}

#[test]
fn lifetime_and_ttl() {
    assert_eq!(lifetime(None, None), None);
    assert_eq!(lifetime(None, Some(10)), Some(10));
    assert_eq!(lifetime(Some(0), Some(10)), None);
    assert_eq!(lifetime(Some(-1), Some(10)), None);
    assert_eq!(lifetime(Some(20), Some(10)), Some(20));
    assert_eq!(ttl(None, 100), Ok(None));
    assert_eq!(ttl(Some(150), 100), Ok(Some(50)));
    assert_eq!(ttl(Some(100), 100), Ok(Some(0)));
    assert_eq!(ttl(Some(99), 100), Err(codes::EXPIRED));
}

#[test]
fn leeway_widens_exp_and_nbf() {
    let v = Verifier::new(&AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        token_leeway_secs: 5,
        ..Default::default()
    })
    .unwrap();
    let t = hs256(&json!({"exp": NOW - 4}));
    assert!(v.verify_connect(&t, NOW).is_ok());
    let t = hs256(&json!({"exp": NOW - 5}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let t = hs256(&json!({"nbf": NOW + 5}));
    assert!(v.verify_connect(&t, NOW).is_ok());
    let t = hs256(&json!({"nbf": NOW + 6}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
}

#[test]
fn error_mappings() {
    use Rejection::*;
    let exp = TokenError::Expired;
    let bad = TokenError::Invalid(InvalidReason::BadSignature);
    let other_chan = TokenError::Invalid(InvalidReason::ChannelMismatch);
    let anon = TokenError::Invalid(InvalidReason::MissingSub);

    assert_eq!(exp.client_error(), codes::TOKEN_EXPIRED);
    assert_eq!(bad.client_error(), codes::PERMISSION_DENIED);
    assert_eq!(exp.disconnect(), codes::CONNECTION_EXPIRED);
    assert_eq!(bad.disconnect(), codes::INVALID_TOKEN);

    assert_eq!(exp.on_connect(), Error(codes::TOKEN_EXPIRED));
    assert_eq!(bad.on_connect(), Disconnect(codes::INVALID_TOKEN));
    assert_eq!(
        anon.on_connect(),
        Disconnect(codes::PERMISSION_DENIED_DISCONNECT)
    );

    assert_eq!(exp.on_refresh(), Disconnect(codes::CONNECTION_EXPIRED));
    assert_eq!(bad.on_refresh(), Disconnect(codes::INVALID_TOKEN));

    assert_eq!(exp.on_subscribe(), Error(codes::TOKEN_EXPIRED));
    assert_eq!(bad.on_subscribe(), Error(codes::PERMISSION_DENIED));
    assert_eq!(other_chan.on_subscribe(), Disconnect(codes::INVALID_TOKEN));

    assert_eq!(exp.on_sub_refresh(), Disconnect(codes::CONNECTION_EXPIRED));
    assert_eq!(bad.on_sub_refresh(), Disconnect(codes::INVALID_TOKEN));

    assert_eq!(exp.to_string(), "token expired");
    assert_eq!(bad.to_string(), "invalid token: bad signature");
}

#[test]
fn verifier_is_shareable_across_shards() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
}
