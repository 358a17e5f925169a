//! Masking (RFC 6455 §5.3): XOR the payload with a 4-byte key, in place.

/// XORs `buf` with `mask`, starting at mask byte 0. Works eight bytes at a time;
/// unaligned 8-byte loads are fine on every target we build for.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let m32 = u32::from_ne_bytes(mask) as u64;
    let m64 = m32 | (m32 << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(word) ^ m64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // Every full chunk is a multiple of 4 bytes, so the tail starts at mask byte 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The byte-at-a-time definition, kept as the reference the fast path is tested
/// against.
pub fn apply_mask_reference(buf: &mut [u8], mask: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_for_every_length_and_alignment() {
        let mask = [0x6d, 0xb6, 0xb2, 0x80];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for offset in 0..16 {
            for len in 0..(data.len() - offset) {
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast[offset..offset + len], mask);
                apply_mask_reference(&mut slow[offset..offset + len], mask);
                assert_eq!(fast, slow, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn masking_twice_is_identity() {
        let original: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut buf = original.clone();
        apply_mask(&mut buf, [1, 2, 3, 4]);
        assert_ne!(buf, original);
        apply_mask(&mut buf, [1, 2, 3, 4]);
        assert_eq!(buf, original);
    }
}
