//! Fossil deltas (the format of fossil-scm's `delta.c`, which Centrifugo's
//! `delta: "fossil"` subscriptions use): `create` makes a delta that turns
//! one payload into the next, `apply` undoes that. No I/O; fuzzed
//! (fuzz/fuzz_targets/fossil.rs).
//!
//! The format: the target's length in base 64 and `\n`, then commands, each
//! a base-64 number and a letter: `N@O,` copies N bytes of the source from
//! offset O, `N:` is followed by N literal bytes, and `C;` ends the delta
//! with C, the sum of the target's big-endian 32-bit words (the last one
//! padded with zeros).
//!
//! The SDKs carry a JSON subscriber's delta in a JSON string, so it must be
//! UTF-8 whenever the payloads are: this encoder never cuts a character
//! (copies start and end on character boundaries of the target, so literal
//! runs are whole characters too). The alphabet and commands are ASCII.

/// The window the encoder hashes (fossil's NHASH).
const WINDOW: usize = 16;
/// Candidates tried per window position before giving up on it.
const MAX_CANDIDATES: usize = 250;

const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/// Why a delta does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A number, command letter or separator is missing or malformed.
    Malformed,
    /// A copy reaches past the source, or the output past its stated size.
    OutOfRange,
    /// The output's length or checksum is not what the delta says.
    Mismatch,
}

/// The delta that turns `source` into `target`.
pub fn create(source: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len() / 4 + 32);
    put_int(&mut out, target.len() as u64);
    out.push(b'\n');
    if source.len() <= WINDOW {
        put_literal(&mut out, target);
        put_int(&mut out, u64::from(checksum(target)));
        out.push(b';');
        return out;
    }
    let index = Index::new(source);
    let mut base = 0; // start of what is not encoded yet
    while base + WINDOW < target.len() {
        let mut i = 0; // window start, relative to base
        let mut h = Rolling::new(&target[base..base + WINDOW]);
        let found = loop {
            if let Some(m) = index.best(source, target, base, base + i, h.value()) {
                break Some(m);
            }
            if base + i + WINDOW >= target.len() {
                break None;
            }
            h.roll(target[base + i], target[base + i + WINDOW]);
            i += 1;
        };
        match found {
            Some(m) => {
                if m.target_at > base {
                    put_literal(&mut out, &target[base..m.target_at]);
                }
                put_int(&mut out, m.len as u64);
                out.push(b'@');
                put_int(&mut out, m.source_at as u64);
                out.push(b',');
                base = m.target_at + m.len;
            }
            None => break,
        }
    }
    if base < target.len() {
        put_literal(&mut out, &target[base..]);
    }
    put_int(&mut out, u64::from(checksum(target)));
    out.push(b';');
    out
}

/// The target `delta` describes, rebuilt from `source`.
pub fn apply(source: &[u8], delta: &[u8]) -> Result<Vec<u8>, Error> {
    let mut r = Reader { rest: delta };
    let size = r.int()?;
    if r.byte()? != b'\n' {
        return Err(Error::Malformed);
    }
    let size = usize::try_from(size).map_err(|_| Error::OutOfRange)?;
    // The stated size is untrusted: reserve no more than the inputs can make
    // without repeating themselves.
    let mut out = Vec::with_capacity(size.min(source.len() + delta.len()));
    loop {
        let n = usize::try_from(r.int()?).map_err(|_| Error::OutOfRange)?;
        match r.byte()? {
            b'@' => {
                let at = usize::try_from(r.int()?).map_err(|_| Error::OutOfRange)?;
                if r.byte()? != b',' {
                    return Err(Error::Malformed);
                }
                let end = at.checked_add(n).ok_or(Error::OutOfRange)?;
                if end > source.len() || out.len() + n > size {
                    return Err(Error::OutOfRange);
                }
                out.extend_from_slice(&source[at..end]);
            }
            b':' => {
                if n > r.rest.len() || out.len() + n > size {
                    return Err(Error::OutOfRange);
                }
                let (lit, rest) = r.rest.split_at(n);
                out.extend_from_slice(lit);
                r.rest = rest;
            }
            b';' => {
                if out.len() != size || u64::from(checksum(&out)) != n as u64 {
                    return Err(Error::Mismatch);
                }
                return Ok(out);
            }
            _ => return Err(Error::Malformed),
        }
    }
}

/// A copy the encoder chose: `len` bytes of the source at `source_at` are
/// the target's at `target_at`.
struct Match {
    source_at: usize,
    target_at: usize,
    len: usize,
}

/// The source's windows at multiples of [`WINDOW`], by hash: `heads` holds
/// the last block per bucket, `next` chains to the block before it.
struct Index {
    heads: Vec<u32>,
    next: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Index {
    fn new(source: &[u8]) -> Index {
        let blocks = source.len() / WINDOW;
        let mut idx = Index {
            heads: vec![NONE; blocks],
            next: vec![NONE; blocks],
        };
        for b in 0..blocks {
            let h = Rolling::new(&source[b * WINDOW..(b + 1) * WINDOW]).value();
            let bucket = h as usize % blocks;
            idx.next[b] = idx.heads[bucket];
            idx.heads[bucket] = b as u32;
        }
        idx
    }

    /// The best copy for the window at `at` (whose hash is `hash`), taking in
    /// what matches before it down to `base`; None when no copy is shorter
    /// than the literal it replaces.
    fn best(
        &self,
        source: &[u8],
        target: &[u8],
        base: usize,
        at: usize,
        hash: u32,
    ) -> Option<Match> {
        let mut block = self.heads[hash as usize % self.heads.len()];
        let mut best: Option<Match> = None;
        let mut tries = 0;
        while block != NONE && tries < MAX_CANDIDATES {
            tries += 1;
            let s = block as usize * WINDOW;
            block = self.next[block as usize];
            // Forward from the window's start, then backward before it.
            let fwd = common_prefix(&source[s..], &target[at..]);
            if fwd < WINDOW {
                continue; // a hash collision
            }
            let back = common_suffix(&source[..s], &target[base..at]);
            let Some(m) = on_char_boundaries(target, s - back, at - back, back + fwd) else {
                continue;
            };
            let cost = digits(m.target_at - base) + digits(m.len) + digits(m.source_at) + 3;
            if m.len > cost && best.as_ref().is_none_or(|b| m.len > b.len) {
                best = Some(m);
            }
        }
        best
    }
}

/// Shrinks a copy so that it starts and ends on character boundaries of the
/// target (a UTF-8 continuation byte never starts a copy or follows one).
fn on_char_boundaries(
    target: &[u8],
    mut source_at: usize,
    mut target_at: usize,
    len: usize,
) -> Option<Match> {
    let mut end = target_at + len;
    let continuation = |b: u8| b & 0xC0 == 0x80;
    while target_at < end && continuation(target[target_at]) {
        target_at += 1;
        source_at += 1;
    }
    while end > target_at && end < target.len() && continuation(target[end]) {
        end -= 1;
    }
    (end > target_at).then_some(Match {
        source_at,
        target_at,
        len: end - target_at,
    })
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// A rolling hash of a [`WINDOW`]-byte window: the byte sum and the sum
/// weighted by distance from the window's end.
struct Rolling {
    a: u32,
    b: u32,
}

impl Rolling {
    fn new(window: &[u8]) -> Rolling {
        let mut h = Rolling { a: 0, b: 0 };
        for (i, &x) in window.iter().enumerate() {
            h.a = h.a.wrapping_add(u32::from(x));
            h.b = h.b.wrapping_add((WINDOW - i) as u32 * u32::from(x));
        }
        h
    }

    /// Slides the window one byte: `out` leaves, `incoming` enters.
    fn roll(&mut self, out: u8, incoming: u8) {
        self.a = self
            .a
            .wrapping_sub(u32::from(out))
            .wrapping_add(u32::from(incoming));
        self.b = self
            .b
            .wrapping_sub(WINDOW as u32 * u32::from(out))
            .wrapping_add(self.a);
    }

    fn value(&self) -> u32 {
        (self.a & 0xffff) | (self.b << 16)
    }
}

fn checksum(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(4);
    let mut sum = 0u32;
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        sum = sum.wrapping_add(u32::from_be_bytes(last));
    }
    sum
}

/// How many base-64 digits `n` takes.
fn digits(n: usize) -> usize {
    let mut d = 1;
    let mut v = n >> 6;
    while v > 0 {
        d += 1;
        v >>= 6;
    }
    d
}

fn put_int(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 11];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 63) as usize];
        v >>= 6;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn put_literal(out: &mut Vec<u8>, lit: &[u8]) {
    put_int(out, lit.len() as u64);
    out.push(b':');
    out.extend_from_slice(lit);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, Error> {
        let (&b, rest) = self.rest.split_first().ok_or(Error::Malformed)?;
        self.rest = rest;
        Ok(b)
    }

    /// A base-64 number (at least one digit; at most 64 bits).
    fn int(&mut self) -> Result<u64, Error> {
        let mut n: u64 = 0;
        let mut len = 0;
        while let Some(d) = self.rest.first().and_then(|&b| digit_value(b)) {
            if n >> 58 != 0 {
                return Err(Error::OutOfRange);
            }
            n = (n << 6) | u64::from(d);
            self.rest = &self.rest[1..];
            len += 1;
        }
        if len == 0 {
            return Err(Error::Malformed);
        }
        Ok(n)
    }
}

fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'Z' => Some(b - b'A' + 10),
        b'_' => Some(36),
        b'a'..=b'z' => Some(b - b'a' + 37),
        b'~' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(a: &[u8], b: &[u8]) -> Vec<u8> {
        let d = create(a, b);
        assert_eq!(
            apply(a, &d).as_deref(),
            Ok(b),
            "delta {:?}",
            String::from_utf8_lossy(&d)
        );
        d
    }

    #[test]
    fn digits_match_the_alphabet() {
        for (v, &c) in DIGITS.iter().enumerate() {
            assert_eq!(digit_value(c), Some(v as u8));
        }
        let mut out = Vec::new();
        put_int(&mut out, 64 * 64 - 1);
        assert_eq!(out, b"~~");
        assert_eq!(digits(63), 1);
        assert_eq!(digits(64), 2);
    }

    #[test]
    fn a_small_change_makes_a_small_delta() {
        let a = br#"{"game":"g1","score":[10,12],"players":["alice","bob","carol","dave"],"clock":"12:01","status":"live"}"#;
        let b = br#"{"game":"g1","score":[11,12],"players":["alice","bob","carol","dave"],"clock":"12:02","status":"live"}"#;
        let d = round_trip(a, b);
        assert!(d.len() < b.len() / 2, "{} of {}", d.len(), b.len());
    }

    #[test]
    fn edge_cases_round_trip() {
        round_trip(b"", b"");
        round_trip(b"", b"new");
        round_trip(b"old", b"");
        round_trip(b"short", b"shorter still");
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        round_trip(&long, &long);
        let mut moved = long[2500..].to_vec();
        moved.extend_from_slice(&long[..2500]);
        let d = round_trip(&long, &moved);
        assert!(d.len() < 64, "two copies: {}", d.len());
        round_trip(&long, b"unrelated");
    }

    #[test]
    fn a_known_delta_applies() {
        // Written by hand from the format: 12 bytes, a 3-byte literal, then
        // 9 bytes copied from offset 0.
        let source = b"abcdefghijkl";
        let target = b"XYZabcdefghi";
        let mut d = b"C\n3:XYZ9@0,".to_vec();
        put_int(&mut d, u64::from(checksum(target)));
        d.push(b';');
        assert_eq!(apply(source, &d).unwrap(), target);
    }

    #[test]
    fn deltas_of_text_are_text() {
        // A change next to multi-byte characters: every literal keeps whole
        // characters, so the delta is valid UTF-8 and fits in a JSON string.
        let a = "{\"name\":\"Zoë Ångström\",\"city\":\"Malmö\",\"note\":\"ünïcödé everywhere: ☃☃☃☃☃☃☃☃\"}";
        for edit in ["Zoé", "Zoë!", "Zo", "ZoëË", "☃"] {
            let b = a.replacen("Zoë", edit, 1);
            let d = round_trip(a.as_bytes(), b.as_bytes());
            assert!(std::str::from_utf8(&d).is_ok(), "{edit}: {d:?}");
        }
        let c = a.replace('☃', "☄");
        let d = round_trip(a.as_bytes(), c.as_bytes());
        assert!(std::str::from_utf8(&d).is_ok());
    }

    #[test]
    fn bad_deltas_are_errors() {
        let src = b"0123456789abcdefghij";
        let good = create(src, b"0123456789abcdefghij!");
        for cut in 0..good.len() {
            assert!(apply(src, &good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(apply(src, b"5\n5@100,0;"), Err(Error::OutOfRange));
        assert_eq!(apply(src, b"1\n9:ab"), Err(Error::OutOfRange));
        assert_eq!(apply(src, b"1\n1:a0;"), Err(Error::Mismatch));
        assert_eq!(apply(src, b"1\n1?a"), Err(Error::Malformed));
        assert_eq!(apply(src, b"~~~~~~~~~~~~\n"), Err(Error::OutOfRange));
    }
}
