//! The word-at-a-time mask against the byte-at-a-time reference: any mask,
//! any length, any start offset (alignment) in the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::ws::mask::{apply_mask, apply_mask_reference};

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let mask = [data[0], data[1], data[2], data[3]];
    let offset = (data[4] & 0xf) as usize;
    let body = &data[5..];
    let offset = offset.min(body.len());
    let mut fast = body.to_vec();
    let mut slow = body.to_vec();
    apply_mask(&mut fast[offset..], mask);
    apply_mask_reference(&mut slow[offset..], mask);
    assert_eq!(fast, slow);
    // Masking twice is the identity.
    apply_mask(&mut fast[offset..], mask);
    assert_eq!(fast, body);
});
