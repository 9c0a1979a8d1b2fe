//! `Symbol`: an instrument name shared by every record of the instrument: cheap to
//! clone, and told apart by address where that is enough.
//!
//! Names are interned per thread: every `Symbol` made on one thread from the same text
//! (by [`Symbol::new`], a conversion, or deserialization after crossing a process)
//! points at one shared allocation. A row therefore costs no allocation for its name,
//! and code that groups many rows by name (the Parquet sink's sort) can tell names
//! apart by [`Symbol::addr`] without reading their bytes. Equality, order and hash are
//! those of the text, so two `Symbol`s made on different threads still compare equal.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Distinct names kept per thread before the table is cleared (a guard against
/// unbounded growth on endless streams of new names; clearing only costs sharing).
const MAX_INTERNED: usize = 1 << 16;

thread_local! {
    static INTERNED: RefCell<FxHashSet<Arc<str>>> = RefCell::new(FxHashSet::default());
}

/// An instrument name (`BTCUSDT`, `spot:ETHUSDT`), or any short label repeated on many
/// records. Serialized as a plain string.
///
/// ```
/// use operators::Symbol;
/// let a = Symbol::new("BTCUSDT");
/// let b: Symbol = String::from("BTCUSDT").into();
/// assert_eq!(a, b);
/// assert_eq!(a.addr(), b.addr()); // one allocation per name and thread
/// assert_eq!(&*a, "BTCUSDT");
/// assert!(Symbol::new("ADAUSDT") < a);
/// let round: Symbol = bincode::deserialize(&bincode::serialize(&a).unwrap()).unwrap();
/// assert_eq!(round.addr(), a.addr());
/// ```
#[derive(Clone)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// The shared symbol for `name` on this thread.
    pub fn new(name: &str) -> Symbol {
        INTERNED.with(|table| {
            let mut table = table.borrow_mut();
            if let Some(s) = table.get(name) {
                return Symbol(s.clone());
            }
            if table.len() >= MAX_INTERNED {
                table.clear();
            }
            let s: Arc<str> = Arc::from(name);
            table.insert(s.clone());
            Symbol(s)
        })
    }

    /// The name.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address of the shared text: equal for two symbols made on the same thread
    /// from the same name (and for their clones), whatever thread holds them now.
    #[inline]
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl Default for Symbol {
    fn default() -> Symbol {
        Symbol::new("")
    }
}

impl Deref for Symbol {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Symbol {
    #[inline]
    fn eq(&self, other: &Symbol) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for Symbol {}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Symbol) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Symbol {
    fn cmp(&self, other: &Symbol) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl Hash for Symbol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same as `str`'s, so that maps keyed by `Symbol` can be looked up by `&str`.
        (*self.0).hash(state)
    }
}

impl PartialEq<str> for Symbol {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Symbol {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<&str> for Symbol {
    fn from(name: &str) -> Symbol {
        Symbol::new(name)
    }
}

impl From<String> for Symbol {
    fn from(name: String) -> Symbol {
        Symbol::new(&name)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Symbol, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Symbol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a symbol string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Symbol, E> {
                Ok(Symbol::new(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Symbol, E> {
                std::str::from_utf8(v)
                    .map(Symbol::new)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(v), &self))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn bincode_round_trip_shares_the_name_and_keeps_string_bytes() {
        let s = Symbol::new("spot:BTCUSDT");
        let bytes = bincode::serialize(&s).unwrap();
        assert_eq!(bytes, bincode::serialize("spot:BTCUSDT").unwrap());
        let back: Symbol = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.addr(), s.addr());
    }

    #[test]
    fn other_threads_make_equal_symbols_at_other_addresses() {
        let here = Symbol::new("ETHUSDT");
        let there = std::thread::spawn(|| Symbol::new("ETHUSDT"))
            .join()
            .unwrap();
        assert_eq!(here, there);
        assert_ne!(here.addr(), there.addr());
        assert_eq!(here.cmp(&there), Ordering::Equal);
        let mut map = HashMap::new();
        map.insert(there, 1);
        assert_eq!(map.get("ETHUSDT"), Some(&1));
        assert_eq!(map.get(&here), Some(&1));
    }

    #[test]
    fn order_is_byte_order() {
        let mut v: Vec<Symbol> = ["b", "a", "B", "ab"].into_iter().map(Symbol::new).collect();
        v.sort();
        let names: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["B", "a", "ab", "b"]);
    }
}
