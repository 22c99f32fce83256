//! A document's heads as a connection remembers them for its device: sorted 32-byte hashes, the
//! usual single head inline.
//!
//! Why not the hex strings the database and the push events use: a connection remembers the heads
//! of every document its device reads, and 1,000 devices of a 3-site company read about a
//! thousand documents each. As `Vec<String>` of hex that was some 200 bytes a (device, document)
//! on the heap, most of the worst-case rush's peak (2026-12-01, jemalloc's heap profile); inline it
//! is 40.

use sitesync_core::sync::protocol::Hash;

/// Sorted change hashes; empty for a document the device holds nothing of. One form per set, so
/// that `==` compares sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Heads {
    /// Nothing held.
    #[default]
    Empty,
    /// One head: a document last changed by one device, the common case.
    One(Hash),
    /// Two or more, sorted: concurrent changes not merged since.
    Many(Box<[Hash]>),
}

impl Heads {
    /// From hashes in any order (duplicates kept once).
    pub fn from_hashes(hashes: &[Hash]) -> Heads {
        match hashes {
            [] => Heads::Empty,
            [one] => Heads::One(*one),
            _ => {
                let mut all = hashes.to_vec();
                all.sort_unstable();
                all.dedup();
                match all.as_slice() {
                    [one] => Heads::One(*one),
                    _ => Heads::Many(all.into_boxed_slice()),
                }
            }
        }
    }

    /// From hex strings in any order; one that is not 32 bytes of hex is left out, as
    /// [`sitesync_core::sync::protocol::hashes`] does.
    pub fn from_hex(hex: &[String]) -> Heads {
        Heads::from_hashes(&sitesync_core::sync::protocol::hashes(hex))
    }

    /// The hashes, sorted.
    pub fn as_slice(&self) -> &[Hash] {
        match self {
            Heads::Empty => &[],
            Heads::One(h) => std::slice::from_ref(h),
            Heads::Many(all) => all,
        }
    }

    /// As hex, sorted (lowercase hex sorts as the bytes do).
    pub fn to_hex(&self) -> Vec<String> {
        self.as_slice().iter().map(hex::encode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_one_form_whatever_the_order_or_the_spelling() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(Heads::from_hashes(&[b, a]), Heads::from_hashes(&[a, b]));
        assert_eq!(Heads::from_hashes(&[a, a]), Heads::One(a));
        assert_eq!(Heads::from_hashes(&[]), Heads::Empty);
        let hex = vec![hex::encode(b), hex::encode(a)];
        assert_eq!(Heads::from_hex(&hex), Heads::from_hashes(&[a, b]));
        assert_eq!(
            Heads::from_hashes(&[b, a]).to_hex(),
            vec![hex::encode(a), hex::encode(b)]
        );
        assert_ne!(Heads::from_hashes(&[a]), Heads::from_hashes(&[a, b]));
        assert_eq!(Heads::from_hex(&["not hex".into()]), Heads::Empty);
        assert_eq!(std::mem::size_of::<Heads>(), 40, "a single head stays inline");
    }
}
