//! JWT authentication: connection tokens (`connect`, `refresh`) and
//! subscription tokens (`subscribe`, `sub_refresh`), with Centrifugo v5
//! semantics. No I/O: the caller passes the token and the time.
//!
//! ```ignore
//! let verifier = Arc::new(Verifier::new(&cfg.auth)?);          // once, at start
//! match verifier.verify_connect(&req.token, unix_now()) {       // per connect
//!     Ok(c) => { /* c.user, c.info (conn_info), c.channels, c.ttl(now) */ }
//!     Err(e) => match e.on_connect() {
//!         Rejection::Error(err) => reply_error(out, id, err),    // 109: SDK refreshes
//!         Rejection::Disconnect(d) => disconnect(s, d),          // 3500
//!     },
//! }
//! ```
//!
//! - [`keys`]: key parsing and the algorithms the configuration admits
//! - [`claims`]: what verified tokens carry
//! - [`verify`]: the [`Verifier`]
//! - [`error`]: [`TokenError`] and its mapping to client errors/disconnects
//!
//! Not supported (yet): JWKS endpoints, `token_audience_regex` /
//! `token_issuer_regex`, `token_user_id_claim`, ES512 (the crypto backend has
//! no P-521), EdDSA, and the `override` options of `subs`.

pub mod claims;
pub mod error;
pub mod keys;
pub mod verify;

use std::fmt;

use serde::Deserialize;

pub use claims::{ConnectClaims, ServerSub, SubClaims};
pub use error::{InvalidReason, Rejection, TokenError};
pub use keys::{Alg, ConfigError};
pub use verify::{unix_now, Verifier};

/// Token settings, named as Centrifugo's options. Every field is optional in
/// TOML; an empty string counts as unset. Which algorithms tokens may use
/// follows from which keys are set: HMAC secret → HS256/384/512, RSA public
/// key → RS256/384/512, ECDSA public key → ES256 (P-256) or ES384 (P-384).
///
/// Subscription tokens use the `subscription_token_*` keys when any of them is
/// set, the connection keys otherwise; `subscription_token_audience` and
/// `subscription_token_issuer` fall back to the connection ones separately.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC secret (the string's UTF-8 bytes, as Centrifugo).
    pub token_hmac_secret_key: Option<String>,
    /// RSA public key, PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub token_rsa_public_key: Option<String>,
    /// ECDSA public key, PEM (`PUBLIC KEY`), curve P-256 or P-384.
    pub token_ecdsa_public_key: Option<String>,
    /// When set, a token's `aud` (string or array) must contain it.
    pub token_audience: Option<String>,
    /// When set, a token's `iss` must equal it.
    pub token_issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds. Default 0.
    pub token_leeway_secs: u64,
    /// Refuse connection tokens without a non-empty `sub` (Centrifugo's
    /// `disallow_anonymous_connection_tokens`). Default false: no `sub` is
    /// the anonymous user `""`.
    pub require_sub: bool,
    pub subscription_token_hmac_secret_key: Option<String>,
    pub subscription_token_rsa_public_key: Option<String>,
    pub subscription_token_ecdsa_public_key: Option<String>,
    pub subscription_token_audience: Option<String>,
    pub subscription_token_issuer: Option<String>,
}

impl fmt::Debug for AuthConfig {
    /// Secrets are shown only as set or not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| match v.as_deref() {
            Some(s) if !s.is_empty() => "<set>",
            _ => "<unset>",
        };
        f.debug_struct("AuthConfig")
            .field("token_hmac_secret_key", &set(&self.token_hmac_secret_key))
            .field("token_rsa_public_key", &set(&self.token_rsa_public_key))
            .field("token_ecdsa_public_key", &set(&self.token_ecdsa_public_key))
            .field("token_audience", &self.token_audience)
            .field("token_issuer", &self.token_issuer)
            .field("token_leeway_secs", &self.token_leeway_secs)
            .field("require_sub", &self.require_sub)
            .field(
                "subscription_token_hmac_secret_key",
                &set(&self.subscription_token_hmac_secret_key),
            )
            .field(
                "subscription_token_rsa_public_key",
                &set(&self.subscription_token_rsa_public_key),
            )
            .field(
                "subscription_token_ecdsa_public_key",
                &set(&self.subscription_token_ecdsa_public_key),
            )
            .field(
                "subscription_token_audience",
                &self.subscription_token_audience,
            )
            .field("subscription_token_issuer", &self.subscription_token_issuer)
            .finish()
    }
}

#[cfg(test)]
mod tests;
