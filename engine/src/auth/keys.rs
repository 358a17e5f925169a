//! Verification keys, parsed once at start-up, and the algorithms they admit.
//!
//! The algorithm a token may use is decided here, by which keys are
//! configured, never by the token: an HMAC secret admits HS256/384/512, an RSA
//! public key RS256/384/512, an ECDSA public key the one ES algorithm of its
//! curve (P-256: ES256, P-384: ES384). A token whose header names anything else
//! (`none`, PS*, EdDSA, an HS algorithm when only RSA is configured, ...) is
//! rejected before any signature is computed.

use std::fmt;

use jsonwebtoken::crypto;
use jsonwebtoken::{Algorithm, DecodingKey};

/// A JWS algorithm that ringcast can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
}

impl Alg {
    pub const ALL: [Alg; 8] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::ES256,
        Alg::ES384,
    ];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }

    /// Exact, case-sensitive match of a header's `alg` (RFC 7515 §4.1.1).
    pub fn from_header(alg: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == alg)
    }

    fn jwt(self) -> Algorithm {
        match self {
            Alg::HS256 => Algorithm::HS256,
            Alg::HS384 => Algorithm::HS384,
            Alg::HS512 => Algorithm::HS512,
            Alg::RS256 => Algorithm::RS256,
            Alg::RS384 => Algorithm::RS384,
            Alg::RS512 => Algorithm::RS512,
            Alg::ES256 => Algorithm::ES256,
            Alg::ES384 => Algorithm::ES384,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration problem, found by [`crate::auth::Verifier::new`]. It names
/// the option at fault and never echoes key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Neither connection nor subscription token keys are configured.
    NoKeys,
    /// The option's value is not a usable key of its kind.
    InvalidKey {
        option: &'static str,
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoKeys => f.write_str(
                "no token key configured: set token_hmac_secret_key, token_rsa_public_key \
                 or token_ecdsa_public_key",
            ),
            ConfigError::InvalidKey { option, reason } => write!(f, "{option}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The keys of one token kind (connection or subscription tokens).
#[derive(Clone, Default)]
pub struct KeySet {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    /// The key and the one ES algorithm its curve admits.
    ecdsa: Option<(DecodingKey, Alg)>,
}

/// Option names for error messages: the connection set's or the subscription set's.
pub(crate) struct KeyOptionNames {
    pub rsa: &'static str,
    pub ecdsa: &'static str,
}

impl KeySet {
    /// Parses the configured keys. An empty string counts as unset.
    pub(crate) fn parse(
        hmac: Option<&str>,
        rsa_pem: Option<&str>,
        ecdsa_pem: Option<&str>,
        names: &KeyOptionNames,
    ) -> Result<KeySet, ConfigError> {
        install_crypto_provider();
        fn set(v: Option<&str>) -> Option<&str> {
            v.filter(|s| !s.is_empty())
        }
        let mut keys = KeySet::default();
        if let Some(secret) = set(hmac) {
            keys.hmac = Some(DecodingKey::from_secret(secret.as_bytes()));
        }
        if let Some(pem) = set(rsa_pem) {
            let bad = |reason: String| ConfigError::InvalidKey {
                option: names.rsa,
                reason,
            };
            if pem.contains("PRIVATE KEY") {
                return Err(bad("a private key: configure the public key".into()));
            }
            let key = DecodingKey::from_rsa_pem(pem.trim().as_bytes())
                .map_err(|e| bad(format!("not an RSA public key in PEM ({e})")))?;
            // The backend parses RSA keys only when verifying (and then a bad
            // key looks like a bad signature), so check the structure here.
            check_rsa_public_der(key.as_bytes())
                .map_err(|e| bad(format!("not an RSA public key ({e})")))?;
            keys.rsa = Some(key);
        }
        if let Some(pem) = set(ecdsa_pem) {
            let bad = |reason: String| ConfigError::InvalidKey {
                option: names.ecdsa,
                reason,
            };
            if pem.contains("PRIVATE KEY") {
                return Err(bad("a private key: configure the public key".into()));
            }
            let key = DecodingKey::from_ec_pem(pem.trim().as_bytes())
                .map_err(|e| bad(format!("not an ECDSA public key in PEM ({e})")))?;
            let alg = curve_alg(key.as_bytes()).ok_or_else(|| {
                bad("unsupported curve: only P-256 (ES256) and P-384 (ES384) keys".into())
            })?;
            keys.ecdsa = Some((key, alg));
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.hmac.is_none() && self.rsa.is_none() && self.ecdsa.is_none()
    }

    /// The algorithms this set admits, in a stable order.
    pub fn algorithms(&self) -> Vec<Alg> {
        Alg::ALL
            .into_iter()
            .filter(|&a| self.key_for(a).is_some())
            .collect()
    }

    /// The key to check an `alg` token with, or `None` when the configuration
    /// does not admit that algorithm. Key families never cross: an RSA key is
    /// never used as an HMAC secret.
    pub(crate) fn key_for(&self, alg: Alg) -> Option<&DecodingKey> {
        match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => self.hmac.as_ref(),
            Alg::RS256 | Alg::RS384 | Alg::RS512 => self.rsa.as_ref(),
            Alg::ES256 | Alg::ES384 => match &self.ecdsa {
                Some((key, a)) if *a == alg => Some(key),
                _ => None,
            },
        }
    }

    /// Checks `signature` (base64url, the token's third part) over `message`
    /// (`header.payload`). `Ok(false)` is a wrong signature; `Err` an
    /// algorithm this set does not admit.
    pub(crate) fn verify(
        &self,
        alg: Alg,
        message: &[u8],
        signature: &str,
    ) -> Result<bool, AlgNotAllowed> {
        let key = self.key_for(alg).ok_or(AlgNotAllowed)?;
        // The backend's errors here are a signature that is not base64url:
        // a bad signature like any other. (Keys were checked at start-up,
        // except an ECDSA point off its curve, which the backend only finds
        // when verifying: then every token fails as a bad signature.)
        Ok(crypto::verify(signature, message, key, alg.jwt()).unwrap_or(false))
    }
}

/// The token's algorithm is not admitted by the configured keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlgNotAllowed;

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (the HMAC secret above all).
        f.debug_struct("KeySet")
            .field("algorithms", &self.algorithms())
            .finish()
    }
}

/// Selects the aws-lc-rs crypto backend for the process. jsonwebtoken picks it
/// from its crate features on its own; installing it explicitly keeps
/// verification working (instead of panicking) if another crate in the build
/// ever turns on the `rust_crypto` feature too. A second install is a no-op.
fn install_crypto_provider() {
    let _ = crypto::CryptoProvider::install_default(&crypto::aws_lc::DEFAULT_PROVIDER);
}

/// Checks that `der` is a PKCS#1 `RSAPublicKey`: `SEQUENCE { INTEGER n,
/// INTEGER e }` and nothing after it, with a modulus of 2048 to 8192 bits (the
/// range the backend verifies; any other key would fail every token).
fn check_rsa_public_der(der: &[u8]) -> Result<(), String> {
    fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            rest = &rest[n..];
            len
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let malformed = || "malformed RSAPublicKey".to_string();
    let (body, trailing) = read_tlv(der, 0x30).ok_or_else(malformed)?;
    let (n, rest) = read_tlv(body, 0x02).ok_or_else(malformed)?;
    let (e, rest) = read_tlv(rest, 0x02).ok_or_else(malformed)?;
    if !trailing.is_empty() || !rest.is_empty() || e.is_empty() {
        return Err(malformed());
    }
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return Err(malformed()),
    };
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if !(2048..=8192).contains(&bits) {
        return Err(format!("modulus of {bits} bits, outside 2048..=8192"));
    }
    Ok(())
}

/// The ES algorithm of an SEC1-encoded public point, by its length:
/// uncompressed `04 || X || Y` or compressed `02/03 || X`.
fn curve_alg(point: &[u8]) -> Option<Alg> {
    match (point.first(), point.len()) {
        (Some(0x04), 65) | (Some(0x02 | 0x03), 33) => Some(Alg::ES256),
        (Some(0x04), 97) | (Some(0x02 | 0x03), 49) => Some(Alg::ES384),
        _ => None,
    }
}
