//! The test client's ETF, through an implementation independent of the server's (`eetf`).

use eetf::{Atom, BigInteger, Binary, FixInteger, Float, List, Map, Term};
use serde_json::{Number, Value};

pub fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    term(value).encode(&mut bytes).unwrap();
    bytes
}

/// Encodes as erlpack (discord.js) does: keys and strings as binaries.
fn term(value: &Value) -> Term {
    match value {
        Value::Null => Atom::from("nil").into(),
        Value::Bool(b) => Atom::from(if *b { "true" } else { "false" }).into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => {
                FixInteger::from(i32::try_from(i).unwrap()).into()
            }
            (Some(i), _) => BigInteger::from(i).into(),
            (None, Some(u)) => BigInteger::from(u).into(),
            _ => Float::try_from(n.as_f64().unwrap()).unwrap().into(),
        },
        Value::String(s) => Binary::from(s.as_bytes()).into(),
        Value::Array(items) => List::from(items.iter().map(term).collect::<Vec<_>>()).into(),
        Value::Object(fields) => {
            let map: std::collections::HashMap<Term, Term> = fields
                .iter()
                .map(|(k, v)| (Binary::from(k.as_bytes()).into(), term(v)))
                .collect();
            Map::from(map).into()
        }
    }
}

pub fn decode(bytes: &[u8]) -> Value {
    value(Term::decode(bytes).unwrap())
}

fn value(term: Term) -> Value {
    match term {
        Term::Atom(atom) => match atom.name.as_str() {
            "nil" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            name => Value::String(name.to_string()),
        },
        Term::FixInteger(i) => Value::from(i.value),
        Term::BigInteger(big) => {
            let text = big.value.to_string();
            text.parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(text.parse::<u64>().unwrap()))
        }
        Term::Float(f) => Value::Number(Number::from_f64(f.value).unwrap()),
        Term::Binary(b) => Value::String(String::from_utf8(b.bytes).unwrap()),
        Term::List(list) => Value::Array(list.elements.into_iter().map(value).collect()),
        Term::ByteList(list) => Value::Array(list.bytes.into_iter().map(Value::from).collect()),
        Term::Map(map) => Value::Object(
            map.map
                .into_iter()
                .map(|(k, v)| match value(k) {
                    Value::String(key) => (key, value(v)),
                    other => panic!("a map key that is not a string: {other}"),
                })
                .collect(),
        ),
        other => panic!("unexpected term {other}"),
    }
}
