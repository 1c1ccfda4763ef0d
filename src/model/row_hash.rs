//! Row hashes both engines compute from typed values, without rendering a row to text.
//!
//! A row's hash is the XOR of one 64-bit hash per compared column, each seeded with the row's
//! key hash and the column's position:
//!
//! ```text
//! key_hash = F(k₀, 0, 0) ⊕ F(k₁, 0, 1) ⊕ …            over the key columns
//! row_hash = F(v₀, key_hash, 0) ⊕ F(v₁, key_hash, 1) ⊕ …   over all compared columns
//! F(v, s, i) = H(v, s ⊕ i)                  when v is not NULL
//!            = hashint8extended(i, s ⊕ NULL_SALT)   when v is NULL
//! ```
//!
//! `H` depends on the column's canon (`canon.rs`) and is a PostgreSQL built-in, reimplemented
//! bit for bit in `hash.rs`:
//!
//! | canon | H(v, seed) in PostgreSQL |
//! |---|---|
//! | `int`, `bool`, `date` | `hashint8extended(v, seed)` (bool as 0/1, date as days since 1970-01-01) |
//! | `scaled<s>` | `hashtextextended(v::text, seed)`, the text padded with zeros to `s` fractional digits (`1.50` → `1.5000`) |
//! | `micros`, `millis` | `timestamp_hash_extended` / `time_hash_extended` of the UTC value (microseconds since 2000-01-01 / midnight), truncated to milliseconds for `millis` |
//! | `text` | `hashtextextended(v, seed)` |
//! | `padded` | `hashtextextended(rtrim(v), seed)` |
//! | `decimal`, `float`, `binary`, `uuid` | `hashtextextended(canonical text, seed)` |
//!
//! Why this shape: typed hashes cost PostgreSQL less than half of rendering and hashing the
//! canonical row text (BENCHMARKS.md). Hashing each column separately needs no separator or
//! length prefix, so `('a|b', 'c')` and `('a', 'b|c')` differ by construction. The key-hash
//! seed binds every value to its row: two rows that swap a value change both hashes instead of
//! cancelling in a segment's XOR, and the column position in the seed keeps two columns that
//! swap values apart. `NULL_SALT` gives NULL a hash no value of any type shares.
//! PostgreSQL's `hash_numeric_extended` is not used: it ignores the sign and folds the weight in
//! linearly, so `1 → 10000` in one row and `10000 → 1` in another would cancel.
//!
//! PostgreSQL computes the hash in SQL (`sources/postgres_canon.rs`), DataFusion in Rust
//! (`reconcile/udf.rs`).

/// Which row hash a reconcile computes on both of its sides.
///
/// `Typed` is the hash above; it needs PostgreSQL's lookup3 functions, which DataFusion gets
/// from `reconcile::udf`. Engines that have neither (Athena's Trino) use `Text`: the row's
/// canonical text (`model::canon`, fields joined with `|`) through MD5, its first 8 bytes read
/// as a big-endian signed integer ([`md5_int64`]). Every engine computes MD5 natively
/// (PostgreSQL `md5`, Trino `md5(to_utf8(..))`, DataFusion a function of lakecheck's). It costs
/// PostgreSQL about twice the typed hash (rendering every value to text), so it is only chosen
/// when a side needs it. The canonical text is unambiguous (text fields carry their byte
/// length, NULL is `~`), and hashing the whole row at once binds every value to its row and
/// position without a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    Typed,
    Text,
}

/// The text row hash of a row's canonical text: the first 8 bytes of its MD5, big-endian, signed.
pub fn md5_int64(canonical_text: &[u8]) -> i64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(canonical_text);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Mixed into the seed of a NULL's hash: `NULL` in ASCII, high half.
pub const NULL_SALT: i64 = 0x4e55_4c4c_0000_0000;

/// Hash of a NULL in column `index` of a row seeded `seed`.
#[inline]
pub fn null_hash(index: usize, seed: i64) -> i64 {
    super::hash::pg_hash_int8(index as i64, seed ^ NULL_SALT)
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
pub const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
