//! Turning a body into JSON values: serde_json first, a tolerant recovery
//! parser when serde_json gives up.
//!
//! serde_json is strict: a body cut by a capture cap, a string with invalid
//! UTF-8 (which Node's body parsers replace with U+FFFD and then accept), or
//! one array nested deeper than serde_json's 128-level limit makes it reject
//! the whole body, although an MCP server would (or, for a truncated capture,
//! did) accept it. [`recover`] then rebuilds what it can: every complete
//! member up to the point of failure, containers closed, subtrees deeper than
//! the depth limit replaced by `null`. It never recurses (explicit stack) and
//! runs in linear time.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::classify::{FRAME_KEYS, PLAIN_KEYS};

/// serde_json's own recursion limit (`Deserializer::disable_recursion_limit`
/// needs a feature we do not enable).
pub(crate) const SERDE_DEPTH: usize = 128;

/// The result of turning one body into JSON values.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub values: Vec<Value>,
    /// First error, one line.
    pub error: Option<String>,
    /// Some value came from [`recover`], not from serde_json.
    pub recovered: bool,
    /// Top-level values beyond the cap.
    pub dropped: usize,
}

impl Parsed {
    /// Keeps `v` if fewer than `max_values` are kept, else counts it.
    fn push(&mut self, v: Value, max_values: usize) {
        if self.values.len() < max_values {
            self.values.push(v);
        } else {
            self.dropped += 1;
        }
    }
}

/// Strips a UTF-8 BOM and surrounding JSON whitespace.
pub(crate) fn trim_input(mut b: &[u8]) -> &[u8] {
    b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    while let [first, rest @ ..] = b {
        if is_ws(*first) {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if is_ws(*last) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether containers nest deeper than `limit` anywhere in `b` (strings are
/// skipped, so brackets inside them do not count).
pub(crate) fn nests_deeper_than(b: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &c in b {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a sequence of JSON values (one body, or several concatenated as in
/// NDJSON), at most `max_values` of them kept.
pub(crate) fn parse_values(text: &[u8], max_depth: usize, max_values: usize) -> Parsed {
    let depth = max_depth.min(SERDE_DEPTH);
    let mut out = Parsed::default();
    let push = |out: &mut Parsed, v: Value| out.push(v, max_values);
    // serde_json only knows its own limit; a smaller configured one is
    // enforced by the recovery parser, which clips too-deep subtrees.
    if depth < SERDE_DEPTH && nests_deeper_than(text, depth) {
        out.error = Some(format!("JSON nested deeper than {depth} levels"));
        let mut offset = 0;
        while offset < text.len() {
            let rest = text.get(offset..).unwrap_or_default();
            let r = recover(rest, depth);
            if let Some(v) = r.value {
                out.recovered = true;
                push(&mut out, v);
            }
            match (r.complete, r.consumed) {
                (true, n) if n > 0 => offset += n,
                _ => break,
            }
        }
        return out;
    }
    if let Some(out) = parse_outlined(text, max_values) {
        return out;
    }
    parse_whole(text, depth, max_values)
}

/// [`parse_values`] building every tree in full, with recovery after an
/// error (nesting already checked).
fn parse_whole(text: &[u8], depth: usize, max_values: usize) -> Parsed {
    let mut out = Parsed::default();
    let push = |out: &mut Parsed, v: Value| out.push(v, max_values);
    let mut offset = 0;
    'values: while offset < text.len() {
        let rest = text.get(offset..).unwrap_or_default();
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        loop {
            match stream.next() {
                None => break 'values,
                Some(Ok(v)) => push(&mut out, v),
                Some(Err(e)) => {
                    let failed_at = offset + stream.byte_offset();
                    if out.error.is_none() {
                        out.error = Some(one_line(&e.to_string()));
                    }
                    let r = recover(text.get(failed_at..).unwrap_or_default(), depth);
                    if let Some(v) = r.value {
                        out.recovered = true;
                        push(&mut out, v);
                    }
                    match (r.complete, r.consumed) {
                        (true, n) if n > 0 => {
                            offset = failed_at + n;
                            continue 'values;
                        }
                        _ => break 'values,
                    }
                }
            }
        }
    }
    out
}

/// The fast path of [`parse_values`] for input that serde_json accepts:
/// only what classification reads becomes a tree. An object with a key of
/// [`FRAME_KEYS`], or an array holding one, is parsed whole (JSON-RPC
/// messages and batches are read in full); any other object keeps only its
/// [`PLAIN_KEYS`] members, a plain array becomes `[]` and a scalar `null`,
/// which classify exactly as the whole value would. Building trees for
/// REST payloads was the detector's costliest step (docs/performance.md).
///
/// Skipped members are still read by serde_json value by value ([`Skip`]),
/// so whatever makes the whole parse fail (invalid UTF-8, a lone surrogate
/// escape, a number out of range, nesting past serde_json's limit) makes
/// this one fail too; `None` then sends the input to the whole-tree path,
/// which reports the error and recovers what it can.
fn parse_outlined(text: &[u8], max_values: usize) -> Option<Parsed> {
    // One UTF-8 check for the whole body, then serde_json reads it as a
    // `str` and skips the per-string checks (the whole parse rejects
    // invalid UTF-8 all the same, so nothing changes but the cost).
    let text = std::str::from_utf8(text).ok()?;
    let mut out = Parsed::default();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Outline>();
    loop {
        let start = stream.byte_offset();
        let value = match stream.next() {
            None => return Some(out),
            Some(Ok(Outline::Reduced(v))) => v,
            Some(Ok(Outline::Whole)) => {
                serde_json::from_str(text.get(start..stream.byte_offset())?).ok()?
            }
            Some(Err(_)) => return None,
        };
        out.push(value, max_values);
    }
}

/// One top-level value as the outline parse sees it.
enum Outline {
    /// What classification needs of it.
    Reduced(Value),
    /// A JSON-RPC envelope candidate: parse it whole.
    Whole,
}

impl<'de> de::Deserialize<'de> for Outline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OutlineVisitor)
    }
}

/// An object key, sorted by what classification does with it.
enum Key {
    Frame,
    Plain(&'static str),
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(if FRAME_KEYS.contains(&k) {
                    Key::Frame
                } else if let Some(name) = PLAIN_KEYS.iter().find(|p| **p == k) {
                    Key::Plain(name)
                } else {
                    Key::Other
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Scalars stand in as `null`: classification only notes that JSON was seen.
macro_rules! scalar_as {
    ($out:expr; $($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok($out)
        }
    )*};
}

struct OutlineVisitor;

impl<'de> Visitor<'de> for OutlineVisitor {
    type Value = Outline;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalar_as!(Outline::Reduced(Value::Null);
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<Outline, E> {
        Ok(Outline::Reduced(Value::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outline, A::Error> {
        let mut kept = Map::new();
        let mut whole = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Plain(name) if !whole => {
                    let v: Value = map.next_value()?;
                    kept.insert(name.to_string(), v);
                }
                Key::Frame => {
                    whole = true;
                    map.next_value::<Skip>()?;
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(if whole {
            Outline::Whole
        } else {
            Outline::Reduced(Value::Object(kept))
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outline, A::Error> {
        let mut whole = false;
        while let Some(FramedElement(framed)) = seq.next_element()? {
            whole |= framed;
        }
        Ok(if whole {
            Outline::Whole
        } else {
            Outline::Reduced(Value::Array(Vec::new()))
        })
    }
}

/// A value read and dropped. Unlike serde's `IgnoredAny` (which serde_json
/// skips without checking strings, numbers or depth), every part goes
/// through the same checks as when a `Value` is built, without allocating.
struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalar_as!(Skip;
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// An array element: is it an object with a [`FRAME_KEYS`] key (a batch
/// member candidate)?
struct FramedElement(bool);

impl<'de> de::Deserialize<'de> for FramedElement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ElementVisitor;
        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = FramedElement;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            scalar_as!(FramedElement(false);
                visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
            fn visit_unit<E: de::Error>(self) -> Result<FramedElement, E> {
                Ok(FramedElement(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FramedElement, A::Error> {
                let mut framed = false;
                while let Some(key) = map.next_key::<Key>()? {
                    framed |= matches!(key, Key::Frame);
                    map.next_value::<Skip>()?;
                }
                Ok(FramedElement(framed))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FramedElement, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(FramedElement(false))
            }
        }
        d.deserialize_any(ElementVisitor)
    }
}

/// Shortens an error message to one line.
pub(crate) fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line
}

/// What [`recover`] rebuilt.
#[derive(Debug, PartialEq)]
pub(crate) struct Recovered {
    /// The (possibly partial) top-level object or array; `None` when nothing
    /// was recovered (not a container, or an empty one that never closed).
    pub value: Option<Value>,
    /// The top-level value was complete (closed).
    pub complete: bool,
    /// Bytes consumed, leading whitespace included, when complete.
    pub consumed: usize,
    /// Some subtree deeper than the limit was replaced by `null`.
    pub clipped: bool,
}

enum Frame {
    Array(Vec<Value>),
    Object(Map<String, Value>, Option<String>),
}

impl Frame {
    fn attach(&mut self, v: Value) {
        match self {
            Frame::Array(items) => items.push(v),
            Frame::Object(map, key) => {
                if let Some(k) = key.take() {
                    map.insert(k, v);
                }
            }
        }
    }

    fn into_value(self) -> Value {
        match self {
            Frame::Array(items) => Value::Array(items),
            Frame::Object(map, _) => Value::Object(map),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Frame::Array(items) => items.is_empty(),
            Frame::Object(map, _) => map.is_empty(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// A value; `]` also allowed (just after `[`).
    ValueOrClose,
    Value,
    /// A key; `}` also allowed (just after `{`).
    KeyOrClose,
    Key,
    CommaOrClose,
}

/// Tolerant parse of one top-level object or array at the start of `b`.
///
/// Valid JSON gives the same value as serde_json (tested), except that
/// subtrees deeper than `max_depth` become `null`. On the first error or at
/// the end of input it closes every open container, dropping the member or
/// element that was incomplete. Strings are decoded with U+FFFD for invalid
/// UTF-8 and lone surrogates; numbers serde_json cannot represent become
/// `null`.
pub(crate) fn recover(b: &[u8], max_depth: usize) -> Recovered {
    let mut p = skip_ws(b, 0);
    let mut stack: Vec<Frame> = Vec::new();
    let mut clipped = false;
    let mut expect = Expect::Value;
    match b.get(p) {
        Some(b'{') | Some(b'[') => {}
        _ => return finish(stack, clipped),
    }
    loop {
        p = skip_ws(b, p);
        let Some(&c) = b.get(p) else {
            return finish(stack, clipped);
        };
        let completed: Value = match expect {
            Expect::Value | Expect::ValueOrClose => {
                if c == b']' && expect == Expect::ValueOrClose {
                    p += 1;
                    match stack.pop() {
                        Some(frame) => frame.into_value(),
                        None => return finish(stack, clipped),
                    }
                } else if c == b'{' || c == b'[' {
                    if stack.len() >= max_depth.max(1) {
                        match skip_container(b, p) {
                            Some(end) => {
                                p = end;
                                clipped = true;
                                Value::Null
                            }
                            None => return finish(stack, true),
                        }
                    } else {
                        p += 1;
                        if c == b'{' {
                            stack.push(Frame::Object(Map::new(), None));
                            expect = Expect::KeyOrClose;
                        } else {
                            stack.push(Frame::Array(Vec::new()));
                            expect = Expect::ValueOrClose;
                        }
                        continue;
                    }
                } else {
                    match scalar(b, p) {
                        Some((v, end)) => {
                            p = end;
                            v
                        }
                        None => return finish(stack, clipped),
                    }
                }
            }
            Expect::Key | Expect::KeyOrClose => {
                if c == b'}' && expect == Expect::KeyOrClose {
                    p += 1;
                    match stack.pop() {
                        Some(frame) => frame.into_value(),
                        None => return finish(stack, clipped),
                    }
                } else if c == b'"' {
                    let Some((key, end)) = string(b, p) else {
                        return finish(stack, clipped);
                    };
                    p = skip_ws(b, end);
                    if b.get(p) != Some(&b':') {
                        return finish(stack, clipped);
                    }
                    p += 1;
                    if let Some(Frame::Object(_, pending)) = stack.last_mut() {
                        *pending = Some(key);
                    }
                    expect = Expect::Value;
                    continue;
                } else {
                    return finish(stack, clipped);
                }
            }
            Expect::CommaOrClose => {
                let top_is_object = matches!(stack.last(), Some(Frame::Object(..)));
                match (c, top_is_object) {
                    (b',', true) => {
                        p += 1;
                        expect = Expect::Key;
                        continue;
                    }
                    (b',', false) => {
                        p += 1;
                        expect = Expect::Value;
                        continue;
                    }
                    (b'}', true) | (b']', false) => {
                        p += 1;
                        match stack.pop() {
                            Some(frame) => frame.into_value(),
                            None => return finish(stack, clipped),
                        }
                    }
                    _ => return finish(stack, clipped),
                }
            }
        };
        match stack.last_mut() {
            Some(parent) => {
                parent.attach(completed);
                expect = Expect::CommaOrClose;
            }
            None => {
                return Recovered {
                    value: Some(completed),
                    complete: true,
                    consumed: p,
                    clipped,
                }
            }
        }
    }
}

/// Closes every open container; the innermost partial one becomes a member of
/// its parent. An empty root is not worth reporting.
fn finish(mut stack: Vec<Frame>, clipped: bool) -> Recovered {
    let mut child: Option<Frame> = None;
    while let Some(mut frame) = stack.pop() {
        if let Some(c) = child.take() {
            frame.attach(c.into_value());
        }
        child = Some(frame);
    }
    let value = child.filter(|root| !root.is_empty()).map(Frame::into_value);
    Recovered {
        value,
        complete: false,
        consumed: 0,
        clipped,
    }
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while b.get(p).is_some_and(|c| is_ws(*c)) {
        p += 1;
    }
    p
}

/// The index just past the container starting at `p`, or `None` at end of
/// input. Bracket kinds are not matched: only the depth matters here.
fn skip_container(b: &[u8], p: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in b.iter().enumerate().skip(p) {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A string, number or literal at `p`, and the index past it. `None` when it
/// is invalid or runs into the end of input (so may be cut short).
fn scalar(b: &[u8], p: usize) -> Option<(Value, usize)> {
    let rest = b.get(p..)?;
    match rest.first()? {
        b'"' => string(b, p).map(|(s, end)| (Value::String(s), end)),
        b't' => literal(rest, b"true", Value::Bool(true)).map(|(v, n)| (v, p + n)),
        b'f' => literal(rest, b"false", Value::Bool(false)).map(|(v, n)| (v, p + n)),
        b'n' => literal(rest, b"null", Value::Null).map(|(v, n)| (v, p + n)),
        b'-' | b'0'..=b'9' => {
            let len = rest
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))?;
            let token = std::str::from_utf8(rest.get(..len)?).ok()?;
            let v = token
                .parse::<Number>()
                .map(Value::Number)
                .unwrap_or(Value::Null);
            Some((v, p + len))
        }
        _ => None,
    }
}

fn literal(rest: &[u8], word: &[u8], v: Value) -> Option<(Value, usize)> {
    rest.starts_with(word).then_some((v, word.len()))
}

/// Decodes the string starting at the quote at `p`; returns it and the index
/// past the closing quote.
fn string(b: &[u8], p: usize) -> Option<(String, usize)> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = p + 1;
    loop {
        let c = *b.get(i)?;
        match c {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let e = *b.get(i + 1)?;
                i += 2;
                let ch = match e {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hi = hex4(b, i)?;
                        i += 4;
                        if (0xD800..0xDC00).contains(&hi)
                            && b.get(i) == Some(&b'\\')
                            && b.get(i + 1) == Some(&b'u')
                        {
                            let lo = hex4(b, i + 2)?;
                            if (0xDC00..0xE000).contains(&lo) {
                                i += 6;
                                let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                char::from_u32(code).unwrap_or('\u{FFFD}')
                            } else {
                                '\u{FFFD}'
                            }
                        } else {
                            char::from_u32(hi).unwrap_or('\u{FFFD}')
                        }
                    }
                    _ => return None,
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i.checked_add(4)?)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| s.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rec(s: &str) -> Option<Value> {
        recover(s.as_bytes(), SERDE_DEPTH).value
    }

    #[test]
    fn trims_bom_and_whitespace() {
        assert_eq!(trim_input(b"\xEF\xBB\xBF \r\n{}\t\n"), b"{}");
        assert_eq!(trim_input(b"   "), b"");
        assert_eq!(trim_input(b""), b"");
    }

    #[test]
    fn complete_values_match_serde() {
        for s in [
            r#"{"a":[1,2.5,-3e2,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}}"#,
            "[]",
            "[[],{}]",
            r#"{"k":{"k":{"k":[1,{"z":null}]}}}"#,
        ] {
            let r = recover(s.as_bytes(), SERDE_DEPTH);
            assert!(r.complete);
            assert_eq!(r.consumed, s.len());
            assert_eq!(
                r.value,
                Some(serde_json::from_str::<Value>(s).unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn truncated_input_keeps_complete_members() {
        let s = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/pas"#;
        assert_eq!(
            rec(s),
            Some(
                json!({"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{}}})
            )
        );
        assert_eq!(rec(r#"{"method":"tools/ca"#), None);
        assert_eq!(rec(r#"{"a":1,"b":tru"#), Some(json!({"a":1})));
        assert_eq!(rec(r#"{"a":12"#), None, "a number cut short is dropped");
        assert_eq!(rec(r#"[1,2,{"x""#), Some(json!([1, 2, {}])));
        assert_eq!(rec(r#"{"a":"\u00"#), None);
        assert_eq!(rec("{"), None);
        assert_eq!(rec("x{}"), None);
        assert!(!recover(b"[1", SERDE_DEPTH).complete);
    }

    #[test]
    fn syntax_error_stops_but_keeps_prefix() {
        assert_eq!(rec(r#"{"a":1,"b":?,"c":2}"#), Some(json!({"a":1})));
        assert_eq!(rec(r#"{"a":1 "b":2}"#), Some(json!({"a":1})));
        assert_eq!(rec(r#"{"a":"\q"}"#), None);
    }

    #[test]
    fn invalid_utf8_and_lone_surrogates_become_replacement_chars() {
        let r = recover(b"{\"m\":\"a\xFFb\",\"s\":\"\\ud800x\"}", SERDE_DEPTH);
        assert!(r.complete);
        assert_eq!(r.value, Some(json!({"m":"a\u{FFFD}b","s":"\u{FFFD}x"})));
    }

    #[test]
    fn deep_subtrees_are_clipped_to_null() {
        let deep = format!(
            "{{\"a\":{}{},\"b\":1}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let r = recover(deep.as_bytes(), 3);
        assert!(r.complete && r.clipped);
        assert_eq!(r.value, Some(json!({"a":[[null]],"b":1})));
        let open = "[".repeat(100_000);
        let r = recover(open.as_bytes(), SERDE_DEPTH);
        assert!(!r.complete && r.clipped);
    }

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        assert!(!nests_deeper_than(br#"{"a":"[[[[\"[[["}"#, 1));
        assert!(nests_deeper_than(b"[[[]]]", 2));
        assert!(!nests_deeper_than(b"[[[]]]", 3));
    }

    #[test]
    fn parse_values_handles_concatenated_and_broken_values() {
        let p = parse_values(b"{\"a\":1}\n{\"b\":2}\n{\"c\":", 128, 10);
        assert_eq!(p.values, vec![json!({"a":1}), json!({"b":2})]);
        assert!(p.error.is_some());
        assert!(!p.recovered, "the cut third value had no complete member");
        let p = parse_values(b"{\"a\":\"\xFF\"} {\"b\":2}", 128, 10);
        assert_eq!(p.values, vec![json!({"a":"\u{FFFD}"}), json!({"b":2})]);
        assert!(p.recovered);
        let p = parse_values(b"{} {} {}", 128, 2);
        assert_eq!((p.values.len(), p.dropped), (2, 1));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1.0e300f64..1.0e300).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn outline_fails_wherever_the_whole_parse_fails() {
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(130), "]".repeat(130));
        let bad: Vec<Vec<u8>> = vec![
            b"{\"x\":\"\xff\"}".to_vec(),
            br#"{"x":"\ud800"}"#.to_vec(),
            br#"{"x":1e400}"#.to_vec(),
            br#"{"x":[1,2}"#.to_vec(),
            deep.into_bytes(),
        ];
        for b in &bad {
            let whole = parse_whole(b, SERDE_DEPTH, 4);
            assert!(whole.error.is_some(), "{}", String::from_utf8_lossy(b));
            assert!(
                parse_outlined(b, 4).is_none(),
                "{}",
                String::from_utf8_lossy(b)
            );
            let values = parse_values(b, SERDE_DEPTH, 4);
            assert_eq!(values.error, whole.error);
            assert_eq!(values.values, whole.values);
        }
        // A surrogate pair and escapes that spell keys are fine.
        let ok = br#"{"x":"\ud83d\ude00","\u0074ools":[{"type":"function"}]}"#;
        let p = parse_outlined(ok, 4).unwrap();
        assert_eq!(p.values, vec![json!({"tools":[{"type":"function"}]})]);
    }

    /// Keys and strings classification looks for, and some it does not.
    const SHAPE_KEYS: &[&str] = &[
        "jsonrpc",
        "method",
        "result",
        "error",
        "id",
        "params",
        "candidates",
        "capabilities",
        "choices",
        "content",
        "content_block",
        "defaultInputModes",
        "input",
        "item",
        "mcp_servers",
        "message",
        "messages",
        "output",
        "response",
        "skills",
        "tools",
        "type",
        "url",
        "server_url",
        "connector_id",
        "tunnel_id",
        "name",
        "tool_calls",
        "delta",
        "parts",
        "functionCall",
        "messageId",
        "input_schema",
        "functionDeclarations",
        "arguments",
        "protocolVersion",
        "clientInfo",
        "serverInfo",
        "data",
        "items",
        "x",
    ];
    const SHAPE_STRINGS: &[&str] = &[
        "2.0",
        "mcp",
        "mcp_toolset",
        "function",
        "tool_use",
        "function_call",
        "mcp_tool_use",
        "mcp_call",
        "mcp_tool_result",
        "mcp_list_tools",
        "response.mcp_call.done",
        "url",
        "initialize",
        "tools/list",
        "tools/call",
        "eth_call",
        "https://mcp.example/mcp",
        "x",
    ];

    fn arb_shaped() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..5).prop_map(|n| json!(n)),
            prop::sample::select(SHAPE_STRINGS).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(6, 96, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(SHAPE_KEYS), inner), 0..6).prop_map(
                    |members| {
                        Value::Object(
                            members
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), v))
                                .collect(),
                        )
                    }
                ),
            ]
        })
    }

    /// Objects in the shapes classification recognises, with random parts
    /// and random extra members, nested under each other.
    fn arb_classified_shape() -> impl Strategy<Value = Value> {
        let s = || prop::sample::select(SHAPE_STRINGS).prop_map(|s| json!(s));
        let block = (s(), s(), arb_shaped())
            .prop_map(|(t, n, v)| json!({"type": t, "name": n, "input": v, "arguments": "{}"}))
            .boxed();
        let tool = (
            s(),
            prop::sample::select(
                &[
                    "server_url",
                    "connector_id",
                    "tunnel_id",
                    "input_schema",
                    "functionDeclarations",
                    "x",
                ][..],
            ),
            s(),
        )
            .prop_map(|(t, k, v)| json!({"type": t, k: v}));
        let templates = prop_oneof![
            prop::collection::vec(tool, 1..3).prop_map(|t| json!({"tools": t})),
            s().prop_map(|u| json!({"mcp_servers": [{"url": u, "name": "n"}]})),
            prop::sample::select(&["message", "delta", "x"][..])
                .prop_map(|k| json!({"choices": [{k: {"tool_calls": []}}]})),
            prop::collection::vec(block.clone(), 1..3).prop_map(|b| json!({"content": b})),
            block
                .clone()
                .prop_map(|b| json!({"messages": [{"content": [b]}]})),
            (
                prop::sample::select(&["output", "input"][..]),
                block.clone()
            )
                .prop_map(|(k, b)| json!({k: [b]})),
            Just(json!({"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]})),
            prop::sample::select(&["capabilities", "defaultInputModes", "x"][..])
                .prop_map(|k| json!({"skills": [], k: []})),
            Just(json!({"message": {"parts": [], "messageId": "m"}})),
            (
                prop::sample::select(&["item", "content_block", "response"][..]),
                block
            )
                .prop_map(|(k, b)| json!({k: b})),
            s().prop_map(|t| json!({"type": t})),
            Just(json!({"type": "response.mcp_list_tools.completed"})),
        ];
        (prop::collection::vec(templates, 1..3), arb_shaped()).prop_map(|(parts, extra)| {
            let mut obj = Map::new();
            for p in parts.into_iter().chain(std::iter::once(extra)) {
                if let Value::Object(m) = p {
                    obj.extend(m);
                }
            }
            Value::Object(obj)
        })
    }

    fn classified(p: &Parsed) -> crate::Analysis {
        let mut a = crate::Analysis::new(&crate::Limits::default());
        for v in &p.values {
            crate::classify::classify_value(v, &mut a);
        }
        a
    }

    proptest! {
        #[test]
        fn recover_agrees_with_serde_on_valid_json(v in arb_json(), pretty in any::<bool>()) {
            let container = json!([v]);
            let s = if pretty { serde_json::to_string_pretty(&container) } else { serde_json::to_string(&container) }.unwrap();
            let r = recover(s.as_bytes(), SERDE_DEPTH);
            prop_assert!(r.complete);
            prop_assert_eq!(r.consumed, s.len());
            prop_assert_eq!(r.value, Some(serde_json::from_str::<Value>(&s).unwrap()));
        }

        #[test]
        fn recover_never_panics_on_prefixes(v in arb_json(), cut in any::<prop::sample::Index>()) {
            let s = serde_json::to_string(&json!({"k": v})).unwrap();
            let cut = cut.index(s.len() + 1);
            let _ = recover(&s.as_bytes()[..cut], 4);
        }

        #[test]
        fn outline_and_full_parses_classify_alike(
            values in prop::collection::vec(prop_oneof![arb_shaped(), arb_classified_shape(),
                arb_classified_shape().prop_map(|v| json!({"response": v})),
                arb_classified_shape().prop_map(|v| json!([v, {"x": 1}]))], 1..4),
            pretty in any::<bool>(),
            escape_keys in any::<bool>(),
        ) {
            let mut text = String::new();
            for v in &values {
                let s = if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
                text.push_str(&s.unwrap());
                text.push('\n');
            }
            if escape_keys {
                // Keys spelled with escapes must be recognised all the same.
                text = text.replace("\"method\"", "\"\\u006dethod\"").replace("\"tools\"", "\"\\u0074ools\"");
            }
            let text = trim_input(text.as_bytes());
            let outlined = parse_outlined(text, 2).expect("valid JSON takes the outline path");
            let whole = parse_whole(text, SERDE_DEPTH, 2);
            prop_assert!(whole.error.is_none());
            prop_assert_eq!(outlined.dropped, whole.dropped);
            prop_assert_eq!(outlined.values.len(), whole.values.len());
            prop_assert_eq!(classified(&outlined), classified(&whole));
        }

        #[test]
        fn recover_never_panics_on_bytes(b in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = recover(&b, 8);
            let _ = parse_values(&b, 8, 4);
        }
    }
}
