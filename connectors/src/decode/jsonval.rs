//! `Any`: a lenient JSON scalar that accepts every JSON type, so that a wrongly typed
//! field becomes a reject naming that field rather than an opaque serde error.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value seen by the decoders (objects and arrays are only noted, not kept).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Any<'a> {
    /// `true` / `false`.
    Bool(bool),
    /// A negative or small integer.
    I(i64),
    /// A non-negative integer.
    U(u64),
    /// A float.
    F(f64),
    /// A string (borrowed from the input when it has no escapes).
    S(Cow<'a, str>),
    /// An object or an array.
    Composite(&'static str),
}

impl Any<'_> {
    /// The value as a number: JSON numbers, or strings that parse as `f64`.
    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Any::I(v) => Some(*v as f64),
            Any::U(v) => Some(*v as f64),
            Any::F(v) => Some(*v),
            Any::S(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A short rendering for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Any::Bool(b) => b.to_string(),
            Any::I(v) => v.to_string(),
            Any::U(v) => v.to_string(),
            Any::F(v) => v.to_string(),
            Any::S(s) => format!("\"{s}\""),
            Any::Composite(what) => (*what).to_string(),
        }
    }
}

struct AnyVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for AnyVisitor<'a> {
    type Value = Any<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Any<'a>, E> {
        Ok(Any::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Any<'a>, E> {
        Ok(Any::I(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Any<'a>, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Any::I(i),
            Err(_) => Any::U(v),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Any<'a>, E> {
        Ok(Any::F(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Any<'a>, E> {
        Ok(Any::S(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Any<'a>, E> {
        Ok(Any::S(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Any<'a>, E> {
        Ok(Any::S(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Any<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Any::Composite("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Any::Composite("an object"))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Any<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Any<'a>, D::Error> {
        d.deserialize_any(AnyVisitor(PhantomData))
    }
}
