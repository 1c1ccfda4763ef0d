//! The 64-bit hashes both engines compute: PostgreSQL's `hashtextextended(text, seed)` and
//! `hashint8extended(bigint, seed)`, i.e. Bob Jenkins' lookup3 as PostgreSQL's
//! `hash_bytes_extended` / `hash_bytes_uint32_extended` apply it (little-endian words,
//! `b << 32 | c` as the result). Reimplemented here so DataFusion computes the same bits;
//! `tests/it/reconcile.rs` checks them against a live server. `row_hash.rs` combines them.
//!
//! Why this hash: it is the fastest row hash PostgreSQL offers (about 3x cheaper than `md5`,
//! see PERF-NOTES), it is built in (no extension), and 64 bits make a chance collision between
//! two differing rows of one segment negligible (~n²/2⁶⁵).

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[inline]
fn word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The starting state of lookup3 for a key of `len` bytes; a non-zero seed is mixed in first
/// (PostgreSQL's `hash_bytes_extended` and `hash_bytes_uint32_extended`).
#[inline]
fn start(len: usize, seed: i64) -> (u32, u32, u32) {
    let init = 0x9e37_79b9u32
        .wrapping_add(len as u32)
        .wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        let seed = seed as u64;
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    (a, b, c)
}

/// `hashtextextended(text, seed)` of `bytes` (deterministic collations hash the bytes).
pub fn pg_hash_seeded(bytes: &[u8], seed: i64) -> i64 {
    let (mut a, mut b, mut c) = start(bytes.len(), seed);
    let mut chunks = bytes.chunks_exact(12);
    for chunk in &mut chunks {
        a = a.wrapping_add(word(&chunk[0..4]));
        b = b.wrapping_add(word(&chunk[4..8]));
        c = c.wrapping_add(word(&chunk[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // The tail is at most 11 bytes; the lowest byte of `c` is left out (lookup3's layout).
        let mut padded = [0u8; 12];
        padded[..tail.len()].copy_from_slice(tail);
        a = a.wrapping_add(word(&padded[0..4]));
        b = b.wrapping_add(word(&padded[4..8]));
        c = c.wrapping_add(word(&padded[8..12]) << 8);
    }
    finish(&mut a, &mut b, &mut c);
    (((b as u64) << 32) | c as u64) as i64
}

/// `hashint8extended(value, seed)`. Values that fit 32 bits hash as `hashint4extended` does,
/// so every integer width agrees (PostgreSQL folds the high half into the low one).
#[inline]
pub fn pg_hash_int8(value: i64, seed: i64) -> i64 {
    let high = (value >> 32) as u32;
    let low = value as u32 ^ if value >= 0 { high } else { !high };
    let (mut a, mut b, mut c) = start(4, seed);
    a = a.wrapping_add(low);
    finish(&mut a, &mut b, &mut c);
    (((b as u64) << 32) | c as u64) as i64
}
