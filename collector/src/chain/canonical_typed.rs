//! The canonical form ([`super::canonical`]) written straight from a typed value, without
//! first building a `serde_json::Value`: the same bytes as
//! `canonical_json(&serde_json::to_value(value)?)`, for about half the instructions. Ingest
//! does this for every event (`batch::to_row`); the tree of maps and strings a `Value` needs
//! (and its drop) was a third of the collector's per-event work on the request threads
//! (tests/instructions/README.md).
//!
//! Each object collects its members' canonical bytes in one buffer, then writes them sorted
//! by key; everything else is written in place. The shapes serde_json turns into something
//! else in a `Value` are turned into the same here (a `None` or a unit into `null`, bytes
//! into an array of numbers, a variant with data into a one-member object, a non-finite
//! float into `null`).

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{self, Error as _, Serialize};
use serde_json::Error;

use super::canonical::{utf16_order, write_float, write_string};

/// The canonical bytes of `value` (UTF-8), as `canonical_json` of its `serde_json::Value`.
pub fn canonical_of<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(1024);
    value.serialize(Canonical { out: &mut out })?;
    Ok(out)
}

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

fn write_integer(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Wrapped<Array<'a>>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Wrapped<Object<'a>>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        write_integer(self.out, value);
        Ok(())
    }
    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        match (i64::try_from(value), u64::try_from(value)) {
            (Ok(small), _) => self.serialize_i64(small),
            (_, Ok(large)) => self.serialize_u64(large),
            _ => Err(Error::custom("number out of range")),
        }
    }
    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        write_integer(self.out, value);
        Ok(())
    }
    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        u64::try_from(value).map_err(|_| Error::custom("number out of range")).and_then(|v| self.serialize_u64(v))
    }
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        self.serialize_f64(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if value.is_finite() {
            write_float(self.out, value);
        } else {
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }
    fn serialize_char(self, value: char) -> Result<(), Error> {
        write_string(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_string(self.out, value);
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        let mut array = self.serialize_seq(Some(value.len()))?;
        for byte in value {
            ser::SerializeSeq::serialize_element(&mut array, byte)?;
        }
        ser::SerializeSeq::end(array)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        open_wrapper(self.out, variant);
        value.serialize(Canonical { out: &mut *self.out })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, Error> {
        self.out.push(b'[');
        Ok(Array { out: self.out, first: true })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Wrapped<Array<'a>>, Error> {
        open_wrapper(self.out, variant);
        Ok(Wrapped(self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, len.unwrap_or(8)))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Wrapped<Object<'a>>, Error> {
        open_wrapper(self.out, variant);
        Ok(Wrapped(Object::new(self.out, len)))
    }
}

/// `{"variant":`: the one-member object serde_json makes of a variant with data.
fn open_wrapper(out: &mut Vec<u8>, variant: &str) {
    out.push(b'{');
    write_string(out, variant);
    out.push(b':');
}

/// An array: elements in order, written in place.
pub struct Array<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Canonical { out: &mut *self.out })
    }

    fn close(self) {
        self.out.push(b']');
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

/// An object: each member's value is written to `values` as it comes, then the members
/// go out sorted by key. A key given twice keeps its last value, as in a `Value`'s map.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    members: Vec<(Cow<'static, str>, Range<usize>)>,
    values: Vec<u8>,
    next_key: Option<String>,
    /// Every key is ASCII (every key of an audit event): sorted by bytes, not transcoded.
    ascii_keys: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, len: usize) -> Object<'a> {
        Object {
            out,
            members: Vec::with_capacity(len),
            values: Vec::with_capacity(len * 32),
            next_key: None,
            ascii_keys: true,
        }
    }

    fn member<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, value: &T) -> Result<(), Error> {
        self.ascii_keys &= key.is_ascii();
        let start = self.values.len();
        value.serialize(Canonical { out: &mut self.values })?;
        self.members.push((key, start..self.values.len()));
        Ok(())
    }

    /// Writes the object; returns the output, for a wrapper's closing brace.
    fn close(mut self) -> &'a mut Vec<u8> {
        // Stable, so of a key given twice the later one comes last and is the one kept.
        if self.ascii_keys {
            self.members.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        } else {
            self.members.sort_by(|(a, _), (b, _)| utf16_order(a, b));
        }
        self.out.push(b'{');
        let mut first = true;
        for (index, (key, range)) in self.members.iter().enumerate() {
            if self.members.get(index + 1).is_some_and(|(next, _)| next == key) {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            write_string(self.out, key);
            self.out.push(b':');
            self.out.extend_from_slice(&self.values[range.clone()]);
        }
        self.out.push(b'}');
        self.out
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.next_key = Some(key.serialize(KeyText)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.next_key.take().ok_or_else(|| Error::custom("a map value without its key"))?;
        self.member(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.member(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

/// A variant with data: its inner array or object, then the wrapper's closing brace.
pub struct Wrapped<T>(T);

impl ser::SerializeTupleVariant for Wrapped<Array<'_>> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.element(value)
    }
    fn end(self) -> Result<(), Error> {
        let Wrapped(array) = self;
        array.out.extend_from_slice(b"]}");
        Ok(())
    }
}

impl ser::SerializeStructVariant for Wrapped<Object<'_>> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.0.member(Cow::Borrowed(key), value)
    }
    fn end(self) -> Result<(), Error> {
        let Wrapped(object) = self;
        object.close().push(b'}');
        Ok(())
    }
}

/// A map key as the text serde_json makes of it: strings, and integers in decimal.
struct KeyText;

fn key_error() -> Error {
    Error::custom("a map key must be a string or an integer")
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    fn serialize_str(self, value: &str) -> Result<String, Error> {
        Ok(value.to_owned())
    }
    fn serialize_char(self, value: char) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_bool(self, value: bool) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_i8(self, value: i8) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_i16(self, value: i16) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_i32(self, value: i32) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_i64(self, value: i64) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_u8(self, value: u8) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_u16(self, value: u16) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_u32(self, value: u32) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_u64(self, value: u64) -> Result<String, Error> {
        Ok(value.to_string())
    }
    fn serialize_f32(self, _value: f32) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _value: f64) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::canonical_of;
    use crate::chain::canonical::canonical_json;

    /// The bytes the collector hashed before this writer: the `Value` route.
    fn through_value<T: Serialize>(value: &T) -> Vec<u8> {
        canonical_json(&serde_json::to_value(value).expect("to a Value"))
    }

    fn same<T: Serialize + std::fmt::Debug>(value: &T) {
        let direct = canonical_of(value).expect("canonical");
        assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&through_value(value)), "{value:?}");
    }

    #[test]
    fn realistic_events_give_the_bytes_of_the_value_route() {
        for index in 0..3000 {
            let mut event = audit_event::sample::realistic(9, index, 1_764_460_800_000 + index as i64 * 7);
            if index % 3 == 0 {
                event.payload.params.insert("\u{fb01}".into(), "ﬁ \"quoted\" \\ \u{7}".into());
                event.payload.params.insert("\u{1f600}".into(), "\u{2028}".into());
            }
            if index % 7 == 0 {
                event.db_user_id = Some(9_007_199_254_740_993);
                event.user_email = None;
                event.response = Some(audit_event::ResponseSummary::new(500, 0.1 + 0.2));
            }
            same(&event);
        }
    }

    #[derive(Debug, Serialize)]
    enum Shape {
        Unit,
        Newtype(f64),
        Tuple(i8, Option<u8>),
        Struct { z: bool, a: Vec<char> },
    }

    #[derive(Debug, Serialize)]
    struct Odd {
        b: Vec<Shape>,
        a: Option<()>,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        floats: [f64; 6],
        keys: BTreeMap<u32, i128>,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    }

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(bytes)
        }
    }

    #[test]
    fn every_shape_gives_the_bytes_of_the_value_route() {
        let odd = Odd {
            b: vec![
                Shape::Unit,
                Shape::Newtype(-2.5e-8),
                Shape::Tuple(-7, None),
                Shape::Struct { z: true, a: vec!['é'] },
            ],
            a: None,
            bytes: vec![0, 255],
            floats: [0.0, -0.0, 1e21, 123456789012345680000.0, f64::NAN, 1.0 / 3.0],
            keys: BTreeMap::from([(10, -1), (9, i128::from(u64::MAX))]),
            rest: BTreeMap::from([("a".into(), json!({"y": [1, {"x": null}]})), ("\u{1f600}".into(), json!(1))]),
        };
        same(&odd);
    }
}
