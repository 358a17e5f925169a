//! Connection and subscription JWTs against `ringcast::auth::Verifier`, with
//! real tokens made by jsonwebtoken and the test keys in `tests/keys/`
//! (generated for these tests only; see the README there).

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{hmac_jwt, hmac_jwt_raw, hmac_sign, sign_jwt};
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use ringcast::auth::{
    Alg, AuthConfig, ConfigError, InvalidReason, Rejection, TokenError, Verifier,
};
use ringcast::protocol::codes;
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000;
const SECRET: &str = "test-hmac-secret-0123456789abcdef";

const RSA_PRIVATE: &str = include_str!("keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa_public.pem");
const RSA_PUBLIC_PKCS1: &str = include_str!("keys/rsa_public_pkcs1.pem");
const RSA1024_PUBLIC: &str = include_str!("keys/rsa1024_public.pem");
const RSA_OTHER_PRIVATE: &str = include_str!("keys/rsa_other_private.pem");
const EC256_PRIVATE: &str = include_str!("keys/ec256_private.pem");
const EC256_PUBLIC: &str = include_str!("keys/ec256_public.pem");
const EC384_PRIVATE: &str = include_str!("keys/ec384_private.pem");
const EC384_PUBLIC: &str = include_str!("keys/ec384_public.pem");
const EC521_PUBLIC: &str = include_str!("keys/ec521_public.pem");

fn invalid(r: InvalidReason) -> TokenError {
    TokenError::Invalid(r)
}

fn cfg_hmac() -> AuthConfig {
    AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        ..Default::default()
    }
}

fn cfg_rsa() -> AuthConfig {
    AuthConfig {
        token_rsa_public_key: Some(RSA_PUBLIC.into()),
        ..Default::default()
    }
}

fn cfg_ec256() -> AuthConfig {
    AuthConfig {
        token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
        ..Default::default()
    }
}

fn verifier(cfg: AuthConfig) -> Verifier {
    Verifier::new(&cfg).expect("valid config")
}

fn hs256(claims: &Value) -> String {
    common::hs256(SECRET, claims)
}

fn rs(alg: Algorithm, private_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    sign_jwt(alg, &key, claims)
}

fn es(alg: Algorithm, private_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap();
    sign_jwt(alg, &key, claims)
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// `header.payload.signature` from raw JSON strings, signed with SECRET.
fn hs_raw(header: &str, payload: &str) -> String {
    hmac_jwt_raw(
        Algorithm::HS256,
        SECRET.as_bytes(),
        header.as_bytes(),
        payload.as_bytes(),
    )
}

fn user_claims() -> Value {
    json!({"sub": "42", "exp": NOW + 3600, "iat": NOW - 10})
}

// ---------------------------------------------------------------------------
// Valid tokens.

#[test]
fn valid_hmac_tokens_all_sizes() {
    let v = verifier(cfg_hmac());
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = hmac_jwt(alg, SECRET.as_bytes(), &user_claims());
        let c = v
            .verify_connect(&t, NOW)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(c.user, "42");
        assert_eq!(c.expires_at, Some(NOW + 3600));
        assert_eq!(c.token_exp, Some(NOW + 3600));
        assert_eq!(c.issued_at, Some(NOW - 10));
        assert_eq!(c.ttl(NOW), Ok(Some(3600)));
    }
    assert_eq!(
        v.allowed_algorithms(),
        &[Alg::HS256, Alg::HS384, Alg::HS512]
    );
}

#[test]
fn valid_rsa_tokens_all_sizes() {
    for public in [RSA_PUBLIC, RSA_PUBLIC_PKCS1] {
        let v = verifier(AuthConfig {
            token_rsa_public_key: Some(public.into()),
            ..Default::default()
        });
        assert_eq!(
            v.allowed_algorithms(),
            &[Alg::RS256, Alg::RS384, Alg::RS512]
        );
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            let t = rs(alg, RSA_PRIVATE, &user_claims());
            let c = v
                .verify_connect(&t, NOW)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(c.user, "42");
        }
    }
}

#[test]
fn valid_ecdsa_tokens() {
    let v = verifier(cfg_ec256());
    assert_eq!(v.allowed_algorithms(), &[Alg::ES256]);
    let t = es(Algorithm::ES256, EC256_PRIVATE, &user_claims());
    assert_eq!(v.verify_connect(&t, NOW).unwrap().user, "42");

    let v = verifier(AuthConfig {
        token_ecdsa_public_key: Some(EC384_PUBLIC.into()),
        ..Default::default()
    });
    assert_eq!(v.allowed_algorithms(), &[Alg::ES384]);
    let t = es(Algorithm::ES384, EC384_PRIVATE, &user_claims());
    assert_eq!(v.verify_connect(&t, NOW).unwrap().user, "42");
}

#[test]
fn all_key_types_together() {
    let v = verifier(AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        token_rsa_public_key: Some(RSA_PUBLIC.into()),
        token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
        ..Default::default()
    });
    assert_eq!(v.allowed_algorithms().len(), 7);
    for t in [
        hs256(&user_claims()),
        rs(Algorithm::RS256, RSA_PRIVATE, &user_claims()),
        es(Algorithm::ES256, EC256_PRIVATE, &user_claims()),
    ] {
        assert_eq!(v.verify_connect(&t, NOW).unwrap().user, "42");
    }
}

#[test]
fn claims_are_carried() {
    let v = verifier(cfg_hmac());
    let t = hs256(&json!({
        "sub": "alice",
        "info": {"name": "Alice"},
        "channels": ["news", "#alice"],
        "jti": "t-1",
    }));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.user, "alice");
    assert_eq!(c.info.as_deref(), Some(r#"{"name":"Alice"}"#));
    assert_eq!(c.channels, ["news", "#alice"]);
    assert_eq!(c.jti.as_deref(), Some("t-1"));
    // No exp: the connection never expires.
    assert_eq!(c.expires_at, None);
    assert_eq!(c.ttl(NOW), Ok(None));
    // The info goes into ClientInfo as conn_info verbatim.
    let ci = ringcast::protocol::push::client_info(&c.user, "cid", c.info.as_deref());
    let parsed: Value = serde_json::from_slice(&ci).unwrap();
    assert_eq!(parsed["conn_info"]["name"], "Alice");
}

// ---------------------------------------------------------------------------
// Expiry.

#[test]
fn expired_tokens() {
    let v = verifier(cfg_hmac());
    // A token is expired from its exp second on.
    for exp in [NOW - 3600, NOW - 1, NOW] {
        let t = hs256(&json!({"sub": "42", "exp": exp}));
        assert_eq!(
            v.verify_connect(&t, NOW),
            Err(TokenError::Expired),
            "exp {exp}"
        );
    }
    let t = hs256(&json!({"sub": "42", "exp": NOW + 1}));
    assert!(v.verify_connect(&t, NOW).is_ok());
    // Not yet valid counts as expired (Centrifugo): the SDK fetches another.
    let t = hs256(&json!({"sub": "42", "nbf": NOW + 60}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let t = hs256(&json!({"sub": "42", "nbf": NOW}));
    assert!(v.verify_connect(&t, NOW).is_ok());

    let e = TokenError::Expired;
    assert_eq!(e.on_connect(), Rejection::Error(codes::TOKEN_EXPIRED));
    assert_eq!(e.client_error().code, 109);
}

#[test]
fn expired_rsa_and_ecdsa_tokens() {
    let claims = json!({"sub": "42", "exp": NOW - 1});
    let v = verifier(cfg_rsa());
    let t = rs(Algorithm::RS256, RSA_PRIVATE, &claims);
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let v = verifier(cfg_ec256());
    let t = es(Algorithm::ES256, EC256_PRIVATE, &claims);
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
}

#[test]
fn leeway_is_configurable() {
    let v = verifier(AuthConfig {
        token_leeway_secs: 30,
        ..cfg_hmac()
    });
    let t = hs256(&json!({"sub": "42", "exp": NOW - 29}));
    assert!(v.verify_connect(&t, NOW).is_ok());
    let t = hs256(&json!({"sub": "42", "exp": NOW - 30}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
}

#[test]
fn expire_at_decides_connection_lifetime() {
    let v = verifier(cfg_hmac());
    // expire_at overrides exp for the connection's lifetime...
    let t = hs256(&json!({"sub": "42", "exp": NOW + 60, "expire_at": NOW + 86400}));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.expires_at, Some(NOW + 86400));
    assert_eq!(c.token_exp, Some(NOW + 60));
    assert_eq!(c.ttl(NOW), Ok(Some(86400)));
    // ...expire_at 0 means the connection never expires...
    let t = hs256(&json!({"sub": "42", "exp": NOW + 60, "expire_at": 0}));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.expires_at, None);
    assert_eq!(c.ttl(NOW), Ok(None));
    // ...but exp is still checked for the token itself.
    let t = hs256(&json!({"sub": "42", "exp": NOW - 1, "expire_at": 0}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    let t = hs256(&json!({"sub": "42", "exp": NOW - 1, "expire_at": NOW + 600}));
    assert_eq!(v.verify_connect(&t, NOW), Err(TokenError::Expired));
    // expire_at alone, without exp.
    let t = hs256(&json!({"sub": "42", "expire_at": NOW + 10}));
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap().expires_at,
        Some(NOW + 10)
    );
    // A valid token whose expire_at is already past: the caller answers 110.
    let t = hs256(&json!({"sub": "42", "exp": NOW + 60, "expire_at": NOW - 5}));
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.ttl(NOW), Err(codes::EXPIRED));
}

// ---------------------------------------------------------------------------
// Signatures and algorithms.

#[test]
fn wrong_signature() {
    let v = verifier(cfg_hmac());
    let t = hmac_jwt(Algorithm::HS256, b"another-secret", &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::BadSignature))
    );
    assert_eq!(
        invalid(InvalidReason::BadSignature).on_connect(),
        Rejection::Disconnect(codes::INVALID_TOKEN)
    );

    let v = verifier(cfg_rsa());
    let t = rs(Algorithm::RS256, RSA_OTHER_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::BadSignature))
    );
}

#[test]
fn tampered_payload_fails_for_every_key_type() {
    let evil = b64(r#"{"sub":"admin"}"#);
    let cases = [
        (verifier(cfg_hmac()), hs256(&user_claims())),
        (
            verifier(cfg_rsa()),
            rs(Algorithm::RS256, RSA_PRIVATE, &user_claims()),
        ),
        (
            verifier(cfg_ec256()),
            es(Algorithm::ES256, EC256_PRIVATE, &user_claims()),
        ),
    ];
    for (v, t) in cases {
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
        assert_eq!(
            v.verify_connect(&forged, NOW),
            Err(invalid(InvalidReason::BadSignature))
        );
        // A truncated or emptied signature too.
        let short = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 4]
        );
        assert_eq!(
            v.verify_connect(&short, NOW),
            Err(invalid(InvalidReason::BadSignature))
        );
        let none = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(
            v.verify_connect(&none, NOW),
            Err(invalid(InvalidReason::BadSignature))
        );
    }
}

#[test]
fn algorithm_must_match_configured_key_type() {
    // HS256 while only RSA is configured.
    let v = verifier(cfg_rsa());
    assert_eq!(
        v.verify_connect(&hs256(&user_claims()), NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    // RS256 while only HMAC is configured.
    let v = verifier(cfg_hmac());
    let t = rs(Algorithm::RS256, RSA_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    // ES256 while only HMAC is configured.
    let t = es(Algorithm::ES256, EC256_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    // ES384 while a P-256 key is configured, and the other way round.
    let v = verifier(cfg_ec256());
    let t = es(Algorithm::ES384, EC384_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    let v = verifier(AuthConfig {
        token_ecdsa_public_key: Some(EC384_PUBLIC.into()),
        ..Default::default()
    });
    let t = es(Algorithm::ES256, EC256_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    // PS256 (RSA-PSS) is not admitted even with an RSA key.
    let v = verifier(cfg_rsa());
    let t = rs(Algorithm::PS256, RSA_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
}

#[test]
fn alg_none_is_rejected() {
    let all = verifier(AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        token_rsa_public_key: Some(RSA_PUBLIC.into()),
        token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
        ..Default::default()
    });
    let payload = b64(r#"{"sub":"admin"}"#);
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let header = b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        for sig in ["", "AAAA"] {
            let t = format!("{header}.{payload}.{sig}");
            assert_eq!(
                all.verify_connect(&t, NOW),
                Err(invalid(InvalidReason::AlgorithmNotAllowed)),
                "alg {alg:?} sig {sig:?}"
            );
            assert_eq!(
                all.verify_subscription(&t, "admin", "c", "ch", NOW),
                Err(invalid(InvalidReason::AlgorithmNotAllowed))
            );
        }
    }
    // No alg at all.
    let t = format!("{}.{payload}.", b64(r#"{"typ":"JWT"}"#));
    assert_eq!(
        all.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::Malformed))
    );
}

#[test]
fn hs_rs_key_confusion_is_rejected() {
    // The attacker knows the RSA public key and signs HS256 with its PEM text
    // as the HMAC secret, hoping the server uses "the key" with the header's alg.
    let claims = json!({"sub": "admin"});
    let forged: Vec<String> = [
        RSA_PUBLIC,
        RSA_PUBLIC.trim(),
        RSA_PUBLIC.trim_end_matches('\n'),
    ]
    .iter()
    .flat_map(|pem| {
        [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            .map(|alg| hmac_jwt(alg, pem.as_bytes(), &claims))
    })
    .collect();

    let rsa_only = verifier(cfg_rsa());
    for t in &forged {
        assert_eq!(
            rsa_only.verify_connect(t, NOW),
            Err(invalid(InvalidReason::AlgorithmNotAllowed))
        );
    }
    // With an HMAC secret configured as well, HS tokens are checked with that
    // secret only, never with the RSA key.
    let both = verifier(AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        ..cfg_rsa()
    });
    for t in &forged {
        assert_eq!(
            both.verify_connect(t, NOW),
            Err(invalid(InvalidReason::BadSignature))
        );
    }
    // Same for ECDSA's PEM.
    let ec = verifier(cfg_ec256());
    let t = hmac_jwt(Algorithm::HS256, EC256_PUBLIC.as_bytes(), &claims);
    assert_eq!(
        ec.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
}

// ---------------------------------------------------------------------------
// Audience, issuer, sub.

#[test]
fn audience_checked_only_when_configured() {
    let open = verifier(cfg_hmac());
    let strict = verifier(AuthConfig {
        token_audience: Some("ringcast".into()),
        ..cfg_hmac()
    });
    let right = hs256(&json!({"sub": "42", "aud": "ringcast"}));
    let right_in_list = hs256(&json!({"sub": "42", "aud": ["web", "ringcast"]}));
    let wrong = hs256(&json!({"sub": "42", "aud": "other"}));
    let missing = hs256(&json!({"sub": "42"}));
    for t in [&right, &right_in_list, &wrong, &missing] {
        assert!(open.verify_connect(t, NOW).is_ok());
    }
    assert!(strict.verify_connect(&right, NOW).is_ok());
    assert!(strict.verify_connect(&right_in_list, NOW).is_ok());
    for t in [&wrong, &missing] {
        assert_eq!(
            strict.verify_connect(t, NOW),
            Err(invalid(InvalidReason::Audience))
        );
    }
    // Audience is judged before expiry: a wrong-audience token is invalid, not expired.
    let t = hs256(&json!({"sub": "42", "aud": "other", "exp": NOW - 1}));
    assert_eq!(
        strict.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::Audience))
    );
}

#[test]
fn issuer_checked_only_when_configured() {
    let open = verifier(cfg_hmac());
    let strict = verifier(AuthConfig {
        token_issuer: Some("https://app.example".into()),
        ..cfg_hmac()
    });
    let right = hs256(&json!({"sub": "42", "iss": "https://app.example"}));
    let wrong = hs256(&json!({"sub": "42", "iss": "https://evil.example"}));
    let missing = hs256(&json!({"sub": "42"}));
    for t in [&right, &wrong, &missing] {
        assert!(open.verify_connect(t, NOW).is_ok());
    }
    assert!(strict.verify_connect(&right, NOW).is_ok());
    for t in [&wrong, &missing] {
        assert_eq!(
            strict.verify_connect(t, NOW),
            Err(invalid(InvalidReason::Issuer))
        );
    }
}

#[test]
fn missing_sub_is_anonymous_unless_required() {
    let anon_ok = verifier(cfg_hmac());
    let no_anon = verifier(AuthConfig {
        require_sub: true,
        ..cfg_hmac()
    });
    for claims in [json!({}), json!({"sub": ""}), json!({"sub": null})] {
        let t = hs256(&claims);
        assert_eq!(
            anon_ok.verify_connect(&t, NOW).unwrap().user,
            "",
            "{claims}"
        );
        let err = no_anon.verify_connect(&t, NOW).unwrap_err();
        assert_eq!(err, invalid(InvalidReason::MissingSub), "{claims}");
        assert_eq!(
            err.on_connect(),
            Rejection::Disconnect(codes::PERMISSION_DENIED_DISCONNECT)
        );
    }
    let t = hs256(&json!({"sub": "42"}));
    assert_eq!(no_anon.verify_connect(&t, NOW).unwrap().user, "42");
    // An expired anonymous token is still "expired" first: the SDK refreshes.
    let t = hs256(&json!({"exp": NOW - 1}));
    assert_eq!(no_anon.verify_connect(&t, NOW), Err(TokenError::Expired));
}

#[test]
fn refresh_token_must_be_for_the_same_user() {
    let v = verifier(cfg_hmac());
    let t = hs256(&json!({"sub": "42", "exp": NOW + 60}));
    assert_eq!(
        v.verify_refresh(&t, "42", NOW).unwrap().expires_at,
        Some(NOW + 60)
    );
    let err = v.verify_refresh(&t, "43", NOW).unwrap_err();
    assert_eq!(err, invalid(InvalidReason::UserMismatch));
    assert_eq!(
        err.on_refresh(),
        Rejection::Disconnect(codes::INVALID_TOKEN)
    );
    let t = hs256(&json!({"sub": "42", "exp": NOW - 1}));
    let err = v.verify_refresh(&t, "42", NOW).unwrap_err();
    assert_eq!(
        err.on_refresh(),
        Rejection::Disconnect(codes::CONNECTION_EXPIRED)
    );
}

// ---------------------------------------------------------------------------
// Subscription tokens.

fn sub_claims(user: &str, channel: &str) -> Value {
    json!({"sub": user, "channel": channel, "exp": NOW + 600, "info": {"role": "mod"}})
}

#[test]
fn valid_subscription_token() {
    let v = verifier(cfg_hmac());
    let t = hs256(&sub_claims("42", "$private"));
    let s = v
        .verify_subscription(&t, "42", "client-1", "$private", NOW)
        .unwrap();
    assert_eq!(s.user, "42");
    assert_eq!(s.channel, "$private");
    assert_eq!(s.info.as_deref(), Some(r#"{"role":"mod"}"#));
    assert_eq!(s.expires_at, Some(NOW + 600));
    assert_eq!(s.ttl(NOW), Ok(Some(600)));
    assert_eq!(s.client, None);

    // RSA and ECDSA too.
    let v = verifier(cfg_rsa());
    let t = rs(Algorithm::RS256, RSA_PRIVATE, &sub_claims("42", "ch"));
    assert!(v.verify_subscription(&t, "42", "c", "ch", NOW).is_ok());
    let v = verifier(cfg_ec256());
    let t = es(Algorithm::ES256, EC256_PRIVATE, &sub_claims("42", "ch"));
    assert!(v.verify_subscription(&t, "42", "c", "ch", NOW).is_ok());
}

#[test]
fn subscription_token_for_another_channel_or_user() {
    let v = verifier(cfg_hmac());
    let t = hs256(&sub_claims("42", "$a"));
    let err = v.verify_subscription(&t, "42", "c", "$b", NOW).unwrap_err();
    assert_eq!(err, invalid(InvalidReason::ChannelMismatch));
    assert_eq!(
        err.on_subscribe(),
        Rejection::Disconnect(codes::INVALID_TOKEN)
    );

    let err = v.verify_subscription(&t, "43", "c", "$a", NOW).unwrap_err();
    assert_eq!(err, invalid(InvalidReason::UserMismatch));
    assert_eq!(
        err.on_sub_refresh(),
        Rejection::Disconnect(codes::INVALID_TOKEN)
    );

    // Anonymous: the token's missing sub is the user "".
    let t = hs256(&json!({"channel": "$a"}));
    assert!(v.verify_subscription(&t, "", "c", "$a", NOW).is_ok());
    assert_eq!(
        v.verify_subscription(&t, "42", "c", "$a", NOW),
        Err(invalid(InvalidReason::UserMismatch))
    );
    // Channel names are compared exactly.
    let t = hs256(&sub_claims("42", "news"));
    for other in ["News", "news ", "news\0", ""] {
        assert_eq!(
            v.verify_subscription(&t, "42", "c", other, NOW),
            Err(invalid(InvalidReason::ChannelMismatch)),
            "{other:?}"
        );
    }
}

#[test]
fn subscription_token_client_claim() {
    let v = verifier(cfg_hmac());
    let t = hs256(&json!({"sub": "42", "channel": "ch", "client": "client-1"}));
    let s = v
        .verify_subscription(&t, "42", "client-1", "ch", NOW)
        .unwrap();
    assert_eq!(s.client.as_deref(), Some("client-1"));
    assert_eq!(
        v.verify_subscription(&t, "42", "client-2", "ch", NOW),
        Err(invalid(InvalidReason::ClientMismatch))
    );
}

#[test]
fn subscription_token_needs_a_channel_claim() {
    let v = verifier(cfg_hmac());
    for claims in [json!({"sub": "42"}), json!({"sub": "42", "channel": ""})] {
        let err = v
            .verify_subscription(&hs256(&claims), "42", "c", "ch", NOW)
            .unwrap_err();
        assert_eq!(err, invalid(InvalidReason::MissingChannel));
        assert_eq!(
            err.on_subscribe(),
            Rejection::Error(codes::PERMISSION_DENIED)
        );
    }
    // And a subscription token does not connect.
    let t = hs256(&sub_claims("42", "ch"));
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::ChannelInConnectToken))
    );
}

#[test]
fn subscription_token_expiry_and_expire_at() {
    let v = verifier(cfg_hmac());
    let t = hs256(&json!({"sub": "42", "channel": "ch", "exp": NOW}));
    let err = v.verify_subscription(&t, "42", "c", "ch", NOW).unwrap_err();
    assert_eq!(err, TokenError::Expired);
    assert_eq!(err.on_subscribe(), Rejection::Error(codes::TOKEN_EXPIRED));
    assert_eq!(
        err.on_sub_refresh(),
        Rejection::Disconnect(codes::CONNECTION_EXPIRED)
    );

    let t = hs256(&json!({"sub": "42", "channel": "ch", "exp": NOW + 60, "expire_at": 0}));
    let s = v.verify_subscription(&t, "42", "c", "ch", NOW).unwrap();
    assert_eq!((s.expires_at, s.token_exp), (None, Some(NOW + 60)));
    let t = hs256(&json!({"sub": "42", "channel": "ch", "exp": NOW + 60, "expire_at": NOW + 7200}));
    let s = v.verify_subscription(&t, "42", "c", "ch", NOW).unwrap();
    assert_eq!(s.expires_at, Some(NOW + 7200));
    let t = hs256(&json!({"sub": "42", "channel": "ch", "exp": NOW - 1, "expire_at": 0}));
    assert_eq!(
        v.verify_subscription(&t, "42", "c", "ch", NOW),
        Err(TokenError::Expired)
    );
}

#[test]
fn subscription_audience_and_issuer() {
    let v = verifier(AuthConfig {
        token_audience: Some("rc".into()),
        token_issuer: Some("app".into()),
        ..cfg_hmac()
    });
    let t = hs256(&json!({"sub": "42", "channel": "ch", "aud": "rc", "iss": "app"}));
    assert!(v.verify_subscription(&t, "42", "c", "ch", NOW).is_ok());
    let t = hs256(&json!({"sub": "42", "channel": "ch", "aud": "x", "iss": "app"}));
    assert_eq!(
        v.verify_subscription(&t, "42", "c", "ch", NOW),
        Err(invalid(InvalidReason::Audience))
    );
    let t = hs256(&json!({"sub": "42", "channel": "ch", "aud": "rc", "iss": "x"}));
    assert_eq!(
        v.verify_subscription(&t, "42", "c", "ch", NOW),
        Err(invalid(InvalidReason::Issuer))
    );
    // A subscription-specific audience overrides the connection one.
    let v = verifier(AuthConfig {
        token_audience: Some("rc".into()),
        subscription_token_audience: Some("rc-subs".into()),
        ..cfg_hmac()
    });
    let t = hs256(&json!({"sub": "42", "channel": "ch", "aud": "rc-subs"}));
    assert!(v.verify_subscription(&t, "42", "c", "ch", NOW).is_ok());
    let t = hs256(&json!({"sub": "42", "channel": "ch", "aud": "rc"}));
    assert_eq!(
        v.verify_subscription(&t, "42", "c", "ch", NOW),
        Err(invalid(InvalidReason::Audience))
    );
    assert!(v.verify_connect(&hs256(&json!({"aud": "rc"})), NOW).is_ok());
}

#[test]
fn separate_subscription_keys() {
    const SUB_SECRET: &str = "subscription-secret";
    let v = verifier(AuthConfig {
        subscription_token_rsa_public_key: Some(RSA_PUBLIC.into()),
        subscription_token_hmac_secret_key: Some(SUB_SECRET.into()),
        ..cfg_hmac()
    });
    assert_eq!(
        v.allowed_algorithms(),
        &[Alg::HS256, Alg::HS384, Alg::HS512]
    );
    assert_eq!(v.subscription_algorithms().len(), 6);
    let claims = sub_claims("42", "ch");
    // Subscription keys verify subscription tokens...
    let by_sub_secret = hmac_jwt(Algorithm::HS256, SUB_SECRET.as_bytes(), &claims);
    assert!(v
        .verify_subscription(&by_sub_secret, "42", "c", "ch", NOW)
        .is_ok());
    let by_rsa = rs(Algorithm::RS256, RSA_PRIVATE, &claims);
    assert!(v.verify_subscription(&by_rsa, "42", "c", "ch", NOW).is_ok());
    // ...the connection secret no longer does...
    let by_conn_secret = hs256(&claims);
    assert_eq!(
        v.verify_subscription(&by_conn_secret, "42", "c", "ch", NOW),
        Err(invalid(InvalidReason::BadSignature))
    );
    // ...and subscription keys do not verify connection tokens.
    let conn = rs(Algorithm::RS256, RSA_PRIVATE, &user_claims());
    assert_eq!(
        v.verify_connect(&conn, NOW),
        Err(invalid(InvalidReason::AlgorithmNotAllowed))
    );
    let conn = hmac_jwt(Algorithm::HS256, SUB_SECRET.as_bytes(), &user_claims());
    assert_eq!(
        v.verify_connect(&conn, NOW),
        Err(invalid(InvalidReason::BadSignature))
    );

    // Only subscription keys: connection tokens have nothing to verify with.
    let v = verifier(AuthConfig {
        subscription_token_hmac_secret_key: Some(SUB_SECRET.into()),
        ..Default::default()
    });
    assert!(v.allowed_algorithms().is_empty());
    assert_eq!(
        v.verify_connect(&conn, NOW),
        Err(invalid(InvalidReason::NoKeys))
    );
    assert!(v
        .verify_subscription(&by_sub_secret, "42", "c", "ch", NOW)
        .is_ok());
}

// ---------------------------------------------------------------------------
// Malformed input never panics.

#[test]
fn malformed_tokens() {
    let v = verifier(AuthConfig {
        token_hmac_secret_key: Some(SECRET.into()),
        token_rsa_public_key: Some(RSA_PUBLIC.into()),
        token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
        ..Default::default()
    });
    let good = hs256(&user_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let hdr = r#"{"alg":"HS256","typ":"JWT"}"#;
    let cases: Vec<(String, InvalidReason)> = vec![
        (String::new(), InvalidReason::Malformed),
        (".".into(), InvalidReason::Malformed),
        ("..".into(), InvalidReason::Malformed),
        ("...".into(), InvalidReason::Malformed),
        ("abc".into(), InvalidReason::Malformed),
        (format!("{h}.{p}"), InvalidReason::Malformed),
        (format!("{h}.{p}.{s}.{s}"), InvalidReason::Malformed),
        (format!("{good}."), InvalidReason::Malformed),
        (format!(" {good}"), InvalidReason::Malformed),
        (format!("{h}=.{p}.{s}"), InvalidReason::Malformed),
        (format!("{h}.{p}.{s}="), InvalidReason::BadSignature),
        (format!("{h}.{p}.!!!!"), InvalidReason::BadSignature),
        (
            format!("{h}.{p}.{}", "A".repeat(10_000)),
            InvalidReason::BadSignature,
        ),
        (format!("!!!.{p}.{s}"), InvalidReason::Malformed),
        (
            format!("{}.{p}.{s}", b64("not json")),
            InvalidReason::Malformed,
        ),
        (format!("{}.{p}.{s}", b64("")), InvalidReason::Malformed),
        (
            format!("{}.{p}.{s}", b64("{\"alg\":")),
            InvalidReason::Malformed,
        ),
        (
            format!("{}.{p}.{s}", b64("\u{1F600}")),
            InvalidReason::Malformed,
        ),
        ("\u{0}.\u{0}.\u{0}".into(), InvalidReason::Malformed),
        ("é.é.é".into(), InvalidReason::Malformed),
        // Signed, but the payload is not base64 / not JSON / not an object.
        (
            hmac_sign(
                Algorithm::HS256,
                SECRET.as_bytes(),
                &format!("{}.%%%", b64(hdr)),
            ),
            InvalidReason::Malformed,
        ),
        (hs_raw(hdr, "{not json"), InvalidReason::BadClaims),
        (hs_raw(hdr, "[1,2,3]"), InvalidReason::BadClaims),
        (hs_raw(hdr, "null"), InvalidReason::BadClaims),
    ];
    for (t, want) in cases {
        assert_eq!(v.verify_connect(&t, NOW), Err(invalid(want)), "{t:?}");
        assert!(v.verify_subscription(&t, "42", "c", "ch", NOW).is_err());
        assert!(v.verify_refresh(&t, "42", NOW).is_err());
    }
    // Malformed tokens are refused on connect with 3500.
    assert_eq!(
        invalid(InvalidReason::Malformed).on_connect(),
        Rejection::Disconnect(codes::INVALID_TOKEN)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        let v = verifier(AuthConfig {
            token_hmac_secret_key: Some(SECRET.into()),
            token_rsa_public_key: Some(RSA_PUBLIC.into()),
            token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
            ..Default::default()
        });
        prop_assert!(v.verify_connect(&s, NOW).is_err());
        prop_assert!(v.verify_subscription(&s, "", "c", "ch", NOW).is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_never_panic(
        header in prop::collection::vec(any::<u8>(), 0..80),
        alg in prop::sample::select(vec!["HS256", "HS512", "RS256", "ES256", "ES384", "none"]),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        sig in prop::collection::vec(any::<u8>(), 0..300),
        json_header in any::<bool>(),
    ) {
        let v = verifier(AuthConfig {
            token_hmac_secret_key: Some(SECRET.into()),
            token_rsa_public_key: Some(RSA_PUBLIC.into()),
            token_ecdsa_public_key: Some(EC256_PUBLIC.into()),
            ..Default::default()
        });
        let header = if json_header {
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#))
        } else {
            URL_SAFE_NO_PAD.encode(&header)
        };
        let t = format!(
            "{header}.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&sig)
        );
        // A random signature never verifies.
        prop_assert!(v.verify_connect(&t, NOW).is_err());
        prop_assert!(v.verify_subscription(&t, "", "c", "ch", NOW).is_err());
    }

    #[test]
    fn signed_arbitrary_payloads_never_panic(payload in prop::collection::vec(any::<u8>(), 0..200)) {
        // Well signed, arbitrary payload bytes: the claims parser must cope.
        let v = verifier(cfg_hmac());
        let t = hmac_jwt_raw(Algorithm::HS256, SECRET.as_bytes(), br#"{"alg":"HS256"}"#, &payload);
        let _ = v.verify_connect(&t, NOW);
        let _ = v.verify_subscription(&t, "", "c", "ch", NOW);
    }
}

// ---------------------------------------------------------------------------
// Configuration errors.

#[test]
fn config_errors_name_the_option() {
    let err = |cfg: AuthConfig| Verifier::new(&cfg).unwrap_err();
    let named = |e: &ConfigError, option: &str| match e {
        ConfigError::InvalidKey { option: o, .. } => *o == option,
        _ => false,
    };

    let e = err(AuthConfig {
        token_rsa_public_key: Some("not a pem".into()),
        ..Default::default()
    });
    assert!(named(&e, "token_rsa_public_key"), "{e}");
    assert!(e.to_string().starts_with("token_rsa_public_key: "), "{e}");

    // An ECDSA key where RSA belongs, and the other way round.
    let e = err(AuthConfig {
        token_rsa_public_key: Some(EC256_PUBLIC.into()),
        ..Default::default()
    });
    assert!(named(&e, "token_rsa_public_key"), "{e}");
    let e = err(AuthConfig {
        token_ecdsa_public_key: Some(RSA_PUBLIC.into()),
        ..Default::default()
    });
    assert!(named(&e, "token_ecdsa_public_key"), "{e}");

    // Private keys pasted in place of public ones.
    let e = err(AuthConfig {
        token_rsa_public_key: Some(RSA_PRIVATE.into()),
        ..Default::default()
    });
    assert!(
        named(&e, "token_rsa_public_key") && e.to_string().contains("private"),
        "{e}"
    );
    let e = err(AuthConfig {
        token_ecdsa_public_key: Some(EC256_PRIVATE.into()),
        ..Default::default()
    });
    assert!(named(&e, "token_ecdsa_public_key"), "{e}");

    // A P-521 key: ES512 is not supported.
    let e = err(AuthConfig {
        token_ecdsa_public_key: Some(EC521_PUBLIC.into()),
        ..Default::default()
    });
    assert!(
        named(&e, "token_ecdsa_public_key") && e.to_string().contains("curve"),
        "{e}"
    );

    // RSA keys under 2048 bits (the backend verifies 2048 to 8192).
    let e = err(AuthConfig {
        token_rsa_public_key: Some(RSA1024_PUBLIC.into()),
        ..Default::default()
    });
    assert!(
        named(&e, "token_rsa_public_key") && e.to_string().contains("1024 bits"),
        "{e}"
    );

    // A truncated PEM body.
    let mut lines: Vec<&str> = RSA_PUBLIC.lines().collect();
    lines.remove(2);
    let e = err(AuthConfig {
        token_rsa_public_key: Some(lines.join("\n")),
        ..Default::default()
    });
    assert!(named(&e, "token_rsa_public_key"), "{e}");

    // Subscription keys are named as such.
    let e = err(AuthConfig {
        subscription_token_rsa_public_key: Some("garbage".into()),
        ..cfg_hmac()
    });
    assert!(named(&e, "subscription_token_rsa_public_key"), "{e}");

    // The error never echoes key material.
    let e = err(AuthConfig {
        token_rsa_public_key: Some(RSA_PRIVATE.into()),
        ..Default::default()
    });
    assert!(!e.to_string().contains("MII"), "{e}");
}

#[test]
fn config_from_toml_section() {
    #[derive(serde::Deserialize)]
    struct File {
        auth: AuthConfig,
    }
    let text = format!(
        "[auth]\ntoken_hmac_secret_key = \"{SECRET}\"\ntoken_rsa_public_key = '''\n{RSA_PUBLIC}'''\n\
         token_issuer = \"app\"\nrequire_sub = true\n"
    );
    let file: File = toml::from_str(&text).unwrap();
    let v = verifier(file.auth);
    assert_eq!(v.allowed_algorithms().len(), 6);
    let t = rs(
        Algorithm::RS256,
        RSA_PRIVATE,
        &json!({"sub": "42", "iss": "app"}),
    );
    assert!(v.verify_connect(&t, NOW).is_ok());
    let t = hs256(&json!({"iss": "app"}));
    assert_eq!(
        v.verify_connect(&t, NOW),
        Err(invalid(InvalidReason::MissingSub))
    );
}

// ---------------------------------------------------------------------------
// Cost, for the record: `cargo test --release --test auth_tokens -- --ignored --nocapture`.

#[test]
#[ignore]
fn verification_cost() {
    use std::time::Instant;
    fn per_op(label: &str, n: u32, mut f: impl FnMut()) {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{label:<28} {:>8.2} µs/op", ns / 1000.0);
    }
    let claims = json!({"sub": "user-123456", "exp": NOW + 3600, "info": {"name": "Ann"}});
    let v = verifier(cfg_hmac());
    let t = hs256(&claims);
    per_op("HS256 verify_connect", 200_000, || {
        assert!(v.verify_connect(std::hint::black_box(&t), NOW).is_ok());
    });
    let bad = hmac_jwt(Algorithm::HS256, b"wrong", &claims);
    per_op("HS256 bad signature", 200_000, || {
        assert!(v.verify_connect(std::hint::black_box(&bad), NOW).is_err());
    });
    let st = hs256(&sub_claims("user-123456", "$chan"));
    per_op("HS256 verify_subscription", 200_000, || {
        assert!(v
            .verify_subscription(std::hint::black_box(&st), "user-123456", "c", "$chan", NOW)
            .is_ok());
    });
    let v = verifier(cfg_rsa());
    let t = rs(Algorithm::RS256, RSA_PRIVATE, &claims);
    per_op("RS256 (2048) verify_connect", 2_000, || {
        assert!(v.verify_connect(std::hint::black_box(&t), NOW).is_ok());
    });
    let v = verifier(cfg_ec256());
    let t = es(Algorithm::ES256, EC256_PRIVATE, &claims);
    per_op("ES256 verify_connect", 2_000, || {
        assert!(v.verify_connect(std::hint::black_box(&t), NOW).is_ok());
    });
}
