//! `encoding=etf`: Erlang's External Term Format, both ways, for JSON-shaped values.
//!
//! Written here rather than taken from a crate because the decoder faces the internet: the one
//! crate there is (`eetf`) allocates whatever sizes a frame claims and recurses without limit,
//! so a six-byte frame could abort the process. This decoder checks every count against the
//! bytes that are really there, refuses compressed terms (Discord's clients never send them)
//! and stops at a fixed depth.
//!
//! Mapping (Discord's conventions): `null` ⇄ atom `nil`, booleans ⇄ atoms, strings ⇄
//! binaries (object keys go out as atoms), integers ⇄ small/int/small-big, floats ⇄ new float,
//! arrays ⇄ lists (`[]` is nil), objects ⇄ maps. Snowflakes stay strings; clients take either.

use serde_json::{Map, Number, Value};

const VERSION: u8 = 131;
const NEW_FLOAT: u8 = 70;
const COMPRESSED: u8 = 80;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const FLOAT: u8 = 99;
const ATOM: u8 = 100;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;
const LARGE_BIG: u8 = 111;
const SMALL_ATOM: u8 = 115;
const MAP: u8 = 116;
const ATOM_UTF8: u8 = 118;
const SMALL_ATOM_UTF8: u8 = 119;

/// Deeper than any gateway payload nests.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    #[error("not an external term (version byte missing)")]
    Version,
    #[error("the term ends early")]
    Truncated,
    #[error("unsupported term tag {0}")]
    Tag(u8),
    #[error("terms nest too deeply")]
    TooDeep,
    #[error("a count larger than the frame")]
    Count,
    #[error("a string is not UTF-8")]
    Utf8,
    #[error("an integer does not fit 64 bits")]
    BigInteger,
    #[error("a map key is not a string or a number")]
    Key,
    #[error("an improper list")]
    ImproperList,
    #[error("bytes after the term")]
    Trailing,
}

/// Encodes a value as a complete term (with the version byte).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = vec![VERSION];
    encode_term(value, &mut out);
    out
}

/// Encodes a value's term without the version byte, to splice into a larger term.
pub fn encode_term(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => atom("nil", out),
        Value::Bool(true) => atom("true", out),
        Value::Bool(false) => atom("false", out),
        Value::Number(number) => encode_number(number, out),
        Value::String(text) => binary(text.as_bytes(), out),
        Value::Array(items) if items.is_empty() => out.push(NIL),
        Value::Array(items) => {
            out.push(LIST);
            out.extend_from_slice(&count(items.len()).to_be_bytes());
            for item in items {
                encode_term(item, out);
            }
            out.push(NIL);
        }
        Value::Object(fields) => {
            map_header(fields.len(), out);
            for (key, value) in fields {
                key_term(key, out);
                encode_term(value, out);
            }
        }
    }
}

/// A map header for `arity` pairs, for callers building a map piece by piece.
pub fn map_header(arity: usize, out: &mut Vec<u8>) {
    out.push(MAP);
    out.extend_from_slice(&count(arity).to_be_bytes());
}

/// A map key: an atom, as Discord sends them (a binary if too long for one).
pub fn key_term(key: &str, out: &mut Vec<u8>) {
    if key.len() <= usize::from(u8::MAX) {
        atom(key, out);
    } else {
        binary(key.as_bytes(), out);
    }
}

pub fn integer(value: i64, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(value) {
        out.extend_from_slice(&[SMALL_INTEGER, small]);
    } else if let Ok(int) = i32::try_from(value) {
        out.push(INTEGER);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        big(value.unsigned_abs(), value < 0, out);
    }
}

pub fn binary(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(BINARY);
    out.extend_from_slice(&count(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn atom(name: &str, out: &mut Vec<u8>) {
    out.push(SMALL_ATOM_UTF8);
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(
        name.as_bytes()
            .get(..usize::from(u8::MAX))
            .unwrap_or(name.as_bytes()),
    );
}

fn encode_number(number: &Number, out: &mut Vec<u8>) {
    if let Some(value) = number.as_i64() {
        integer(value, out);
    } else if let Some(value) = number.as_u64() {
        big(value, false, out);
    } else {
        out.push(NEW_FLOAT);
        out.extend_from_slice(&number.as_f64().unwrap_or(0.0).to_be_bytes());
    }
}

fn big(magnitude: u64, negative: bool, out: &mut Vec<u8>) {
    let bytes = magnitude.to_le_bytes();
    let used = bytes.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
    out.extend_from_slice(&[
        SMALL_BIG,
        u8::try_from(used).unwrap_or(8),
        u8::from(negative),
    ]);
    out.extend_from_slice(bytes.get(..used).unwrap_or(&bytes));
}

/// Lengths on the wire are 32-bit; nothing this server encodes comes near that.
fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Decodes a complete term (version byte first) into a JSON value.
pub fn decode(bytes: &[u8]) -> Result<Value, EtfError> {
    let (&version, rest) = bytes.split_first().ok_or(EtfError::Version)?;
    if version != VERSION {
        return Err(EtfError::Version);
    }
    let mut reader = Reader { bytes: rest };
    let value = reader.term(0)?;
    if reader.bytes.is_empty() {
        Ok(value)
    } else {
        Err(EtfError::Trailing)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        if n > self.bytes.len() {
            return Err(EtfError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EtfError> {
        self.take(N)?.try_into().map_err(|_| EtfError::Truncated)
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, EtfError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| EtfError::Count)
    }

    /// A count of items each taking at least `min_bytes`: never more than the frame holds.
    fn items(&self, n: usize, min_bytes: usize) -> Result<usize, EtfError> {
        if n.saturating_mul(min_bytes) > self.bytes.len() {
            return Err(EtfError::Count);
        }
        Ok(n)
    }

    fn text(&mut self, n: usize) -> Result<String, EtfError> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| EtfError::Utf8)
    }

    fn term(&mut self, depth: usize) -> Result<Value, EtfError> {
        if depth > MAX_DEPTH {
            return Err(EtfError::TooDeep);
        }
        let tag = self.u8()?;
        match tag {
            SMALL_INTEGER => Ok(Value::from(self.u8()?)),
            INTEGER => Ok(Value::from(i32::from_be_bytes(self.array()?))),
            SMALL_BIG => {
                let n = usize::from(self.u8()?);
                self.big(n)
            }
            LARGE_BIG => {
                let n = self.u32()?;
                self.big(n)
            }
            NEW_FLOAT => float(f64::from_be_bytes(self.array()?)),
            FLOAT => {
                let text = self.text(31)?;
                float(
                    text.trim_end_matches('\0')
                        .trim()
                        .parse()
                        .map_err(|_| EtfError::Tag(FLOAT))?,
                )
            }
            ATOM | ATOM_UTF8 => {
                let n = self.u16()?;
                self.atom(n)
            }
            SMALL_ATOM | SMALL_ATOM_UTF8 => {
                let n = usize::from(self.u8()?);
                self.atom(n)
            }
            NIL => Ok(Value::Array(Vec::new())),
            STRING => {
                // An Erlang string is a list of bytes.
                let n = self.u16()?;
                Ok(Value::Array(
                    self.take(n)?.iter().map(|b| Value::from(*b)).collect(),
                ))
            }
            LIST => {
                let n = self.u32()?;
                let n = self.items(n, 1)?;
                let items = self.terms(n, depth)?;
                if self.u8()? != NIL {
                    return Err(EtfError::ImproperList);
                }
                Ok(Value::Array(items))
            }
            SMALL_TUPLE => {
                let n = usize::from(self.u8()?);
                Ok(Value::Array(self.terms(n, depth)?))
            }
            LARGE_TUPLE => {
                let n = self.u32()?;
                let n = self.items(n, 1)?;
                Ok(Value::Array(self.terms(n, depth)?))
            }
            BINARY => {
                let n = self.u32()?;
                Ok(Value::String(self.text(n)?))
            }
            MAP => {
                let n = self.u32()?;
                let n = self.items(n, 2)?;
                let mut fields = Map::new();
                for _ in 0..n {
                    let key = match self.term(depth + 1)? {
                        Value::String(key) => key,
                        Value::Number(number) => number.to_string(),
                        _ => return Err(EtfError::Key),
                    };
                    fields.insert(key, self.term(depth + 1)?);
                }
                Ok(Value::Object(fields))
            }
            COMPRESSED => Err(EtfError::Tag(COMPRESSED)),
            other => Err(EtfError::Tag(other)),
        }
    }

    fn terms(&mut self, n: usize, depth: usize) -> Result<Vec<Value>, EtfError> {
        let mut items = Vec::with_capacity(self.items(n, 1)?);
        for _ in 0..n {
            items.push(self.term(depth + 1)?);
        }
        Ok(items)
    }

    fn atom(&mut self, n: usize) -> Result<Value, EtfError> {
        Ok(match self.text(n)?.as_str() {
            "nil" | "null" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            name => Value::String(name.to_string()),
        })
    }

    fn big(&mut self, n: usize) -> Result<Value, EtfError> {
        let negative = self.u8()? != 0;
        let digits = self.take(n)?;
        if digits.iter().skip(8).any(|d| *d != 0) {
            return Err(EtfError::BigInteger);
        }
        let magnitude = digits
            .iter()
            .take(8)
            .rev()
            .fold(0u64, |m, d| (m << 8) | u64::from(*d));
        if !negative {
            return Ok(Value::from(magnitude));
        }
        let value = match i64::try_from(magnitude) {
            Ok(m) => -m,
            Err(_) if magnitude == 1 << 63 => i64::MIN,
            Err(_) => return Err(EtfError::BigInteger),
        };
        Ok(Value::from(value))
    }
}

fn float(value: f64) -> Result<Value, EtfError> {
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or(EtfError::Tag(NEW_FLOAT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_as_erlang_does() {
        // Byte strings worked out by hand from the external term format's specification.
        assert_eq!(encode(&json!(null)), [131, 119, 3, b'n', b'i', b'l']);
        assert_eq!(encode(&json!(true)), [131, 119, 4, b't', b'r', b'u', b'e']);
        assert_eq!(encode(&json!(7)), [131, 97, 7]);
        assert_eq!(encode(&json!(-1)), [131, 98, 255, 255, 255, 255]);
        assert_eq!(encode(&json!(300)), [131, 98, 0, 0, 1, 44]);
        // A snowflake as a small big: 8 digits, positive, little-endian (Python's
        // `(175928847299117063).to_bytes(8, "little")`).
        assert_eq!(
            encode(&json!(175928847299117063u64)),
            [131, 110, 8, 0, 7, 0, 2, 193, 90, 6, 113, 2]
        );
        assert_eq!(encode(&json!("hi")), [131, 109, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(encode(&json!([])), [131, 106]);
        assert_eq!(
            encode(&json!([1, 2])),
            [131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 106]
        );
        assert_eq!(
            encode(&json!({ "op": 1 })),
            [131, 116, 0, 0, 0, 1, 119, 2, b'o', b'p', 97, 1]
        );
        assert_eq!(encode(&json!(1.5)), [131, 70, 63, 248, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn decodes_what_clients_send() {
        // erlpack (discord.js) sends keys and strings as binaries, nulls as the atom nil.
        let identify = [
            131, 116, 0, 0, 0, 2, 109, 0, 0, 0, 2, b'o', b'p', 97, 2, 109, 0, 0, 0, 1, b'd', 116,
            0, 0, 0, 3, 109, 0, 0, 0, 5, b't', b'o', b'k', b'e', b'n', 109, 0, 0, 0, 3, b'a', b'b',
            b'c', 100, 0, 7, b'i', b'n', b't', b'e', b'n', b't', b's', 98, 0, 0, 2, 1, 115, 8,
            b'p', b'r', b'e', b's', b'e', b'n', b'c', b'e', 115, 3, b'n', b'i', b'l',
        ];
        assert_eq!(
            decode(&identify).unwrap(),
            json!({ "op": 2, "d": { "token": "abc", "intents": 513, "presence": null } })
        );
        assert_eq!(
            decode(&[131, 107, 0, 2, 104, 105]).unwrap(),
            json!([104, 105])
        );
        assert_eq!(decode(&[131, 104, 2, 97, 1, 106]).unwrap(), json!([1, []]));
        let value = json!({ "a": [1, "x", null, true, { "b": -5000000000i64 }], "f": 0.25 });
        assert_eq!(decode(&encode(&value)).unwrap(), value);
    }

    #[test]
    fn hostile_terms_are_refused_without_allocating_or_recursing() {
        // A list claiming four billion elements in a six-byte frame.
        assert_eq!(
            decode(&[131, 108, 255, 255, 255, 255]),
            Err(EtfError::Count)
        );
        assert_eq!(
            decode(&[131, 116, 255, 255, 255, 255]),
            Err(EtfError::Count)
        );
        assert_eq!(
            decode(&[131, 109, 255, 255, 255, 255]),
            Err(EtfError::Truncated)
        );
        let mut deep = vec![131];
        for _ in 0..1000 {
            deep.extend_from_slice(&[108, 0, 0, 0, 1]);
        }
        assert_eq!(decode(&deep), Err(EtfError::TooDeep));
        assert_eq!(
            decode(&[131, 80, 0, 0, 0, 10, 120, 156]),
            Err(EtfError::Tag(COMPRESSED))
        );
        assert_eq!(
            decode(&[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(EtfError::BigInteger)
        );
        assert_eq!(decode(&[131, 97, 1, 97]), Err(EtfError::Trailing));
        assert_eq!(decode(&[97, 1]), Err(EtfError::Version));
        assert_eq!(
            decode(&[131, 108, 0, 0, 0, 1, 97, 1, 97, 2]),
            Err(EtfError::ImproperList)
        );
    }
}
