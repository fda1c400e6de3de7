//! Reading JSON into the protocol's types: one small reader, compiled once, and a [`FromJson`]
//! per type that asks it for what it expects next.
//!
//! serde's derive with serde_json compiled a decoder per type *and* per format, each with its
//! own field matcher, sequence form and error paths: with the trees around them, 75 kB of the
//! page's 315 kB (gzip). Here the reader is not generic (an object's fields are handed to a
//! `&mut dyn FnMut`), so its code exists once, and a type's decoder is the short match its
//! macro writes. The agent decodes with it too: one reader of the format, the one the tests
//! exercise. Encoding stays serde's derive; the tests hold every type to reading back exactly
//! what the encoder wrote.
//!
//! What it reads is what serde's derive read: fields in any order, unknown fields ignored
//! (except where a type refuses them), a missing `Option` field `None`, and serde's own words
//! for what is wrong ("missing field `hz`", "unknown variant `x`, expected one of …"), with the
//! line and column where it was found. Nesting is limited to 128 levels, as serde_json's is.

use std::borrow::Cow;
use std::fmt;

/// How deep objects and arrays may nest (serde_json's limit).
const MAX_DEPTH: u32 = 128;

/// What went wrong, and where. Boxed: a `Result` of it is a pointer wide, which keeps every
/// decoder's happy path small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(Box<Failure>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    message: String,
    line: usize,
    column: usize,
    eof: bool,
}

impl JsonError {
    /// Whether the text ended where more was needed (a line cut short, not a bad one).
    pub fn is_eof(&self) -> bool {
        self.0.eof
    }

    /// What went wrong, without where.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.0.message, self.0.line, self.0.column
        )
    }
}

impl std::error::Error for JsonError {}

/// A result of reading.
pub type Result<T> = std::result::Result<T, JsonError>;

/// A type that can be read from JSON.
pub trait FromJson: Sized {
    /// Reads one value of this type.
    fn read(r: &mut Reader<'_>) -> Result<Self>;

    /// What a missing field of this type is worth: `None` makes it an error ("missing field").
    fn absent() -> Option<Self> {
        None
    }
}

/// Reads a whole text as one `T`: nothing but whitespace may follow it.
pub fn from_str<T: FromJson>(text: &str) -> Result<T> {
    let mut r = Reader::new(text);
    let value = T::read(&mut r)?;
    r.end()?;
    Ok(value)
}

/// Reads a whole byte text as one `T` (it must be UTF-8).
pub fn from_slice<T: FromJson>(bytes: &[u8]) -> Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text),
        Err(e) => Err(Reader::new("").fail(format!("invalid UTF-8 ({e})"))),
    }
}

/// `text` as a JSON string, as serde_json writes it (without its serialiser in the page). Also
/// how messages quote what they are about (rather than `{:?}`, whose escaping brings core's
/// Unicode tables into the page).
pub fn quote(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A position in a JSON text and the reading of what comes next.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `text`.
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not whitespace (not consumed), if any.
    fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    /// An error at the current position.
    pub fn fail(&self, message: impl Into<String>) -> JsonError {
        self.fail_at(self.pos, message.into(), false)
    }

    fn fail_at(&self, pos: usize, message: String, eof: bool) -> JsonError {
        let upto = &self.bytes()[..pos.min(self.text.len())];
        let line = 1 + upto.iter().filter(|&&c| c == b'\n').count();
        let column = upto.iter().rev().take_while(|&&c| c != b'\n').count();
        JsonError(Box::new(Failure {
            message,
            line,
            column,
            eof,
        }))
    }

    /// The text ended where `what` still needed more.
    fn eof(&self, what: &str) -> JsonError {
        self.fail_at(self.text.len(), format!("EOF while parsing {what}"), true)
    }

    /// The next value is not what was expected: names what it is, in serde's words.
    pub fn unexpected(&mut self, expected: &str) -> JsonError {
        let start = self.pos;
        let found = match self.peek() {
            None => return self.eof("a value"),
            Some(b'"') => match self.string() {
                Ok(s) => format!("string {}", quote(&s)),
                Err(e) => return e,
            },
            Some(b'{') => "map".into(),
            Some(b'[') => "sequence".into(),
            Some(b't' | b'f') => match self.bool() {
                Ok(b) => format!("boolean `{b}`"),
                Err(e) => return e,
            },
            Some(b'n') => match self.literal("null") {
                Ok(()) => "null".into(),
                Err(e) => return e,
            },
            Some(b'-' | b'0'..=b'9') => match self.number() {
                Ok(n) if n.integer && !n.negative => format!("integer `{}`", n.text),
                Ok(n) if n.integer => format!("integer `{}`", n.text),
                Ok(n) => format!("floating point `{}`", n.text),
                Err(e) => return e,
            },
            Some(_) => return self.fail("expected value"),
        };
        self.fail_at(
            start.max(self.pos.saturating_sub(1)),
            format!("invalid type: {found}, expected {expected}"),
            false,
        )
    }

    /// Consumes `null` if it comes next; says whether it did.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        let rest = &self.bytes()[self.pos..];
        if rest.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else if word.as_bytes().starts_with(rest) {
            Err(self.eof("a value"))
        } else {
            Err(self.fail("expected ident"))
        }
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(self.unexpected("a boolean")),
        }
    }

    /// Reads a string: borrowed from the text unless it has escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string"));
        }
        self.pos += 1;
        let b = self.bytes();
        let start = self.pos;
        // The common case: no escapes, one slice of the text.
        loop {
            match b.get(self.pos) {
                None => return Err(self.eof("a string")),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => return Err(self.control()),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            loop {
                match b.get(self.pos) {
                    None => return Err(self.eof("a string")),
                    Some(b'"' | b'\\') => break,
                    Some(&c) if c < 0x20 => return Err(self.control()),
                    Some(_) => self.pos += 1,
                }
            }
            out.push_str(&self.text[run..self.pos]);
            if b[self.pos] == b'"' {
                self.pos += 1;
                return Ok(Cow::Owned(out));
            }
            self.pos += 1;
            let Some(&e) = b.get(self.pos) else {
                return Err(self.eof("a string"));
            };
            self.pos += 1;
            match e {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => return Err(self.fail_at(self.pos - 1, "invalid escape".into(), false)),
            }
        }
    }

    fn control(&self) -> JsonError {
        self.fail(r"control character (\u0000-\u001F) found while parsing a string")
    }

    /// Reads the four hex digits after `\u` (and a second escape after a leading surrogate).
    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                let rest = &self.bytes()[self.pos..];
                if rest.is_empty() || rest == b"\\" {
                    // Cut short before its second half: the text ended, not a bad one.
                    return Err(self.eof("a string"));
                }
                if !rest.starts_with(b"\\u") {
                    return Err(self.fail("lone leading surrogate in hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.fail("lone leading surrogate in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.fail("lone trailing surrogate in hex escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.fail("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let Some(&c) = self.bytes().get(self.pos) else {
                return Err(self.eof("a string"));
            };
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.fail("invalid escape")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// Reads a number's text and what it is.
    fn number(&mut self) -> Result<Number<'a>> {
        let b = self.bytes();
        let start = self.pos;
        let negative = b.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let digits = |r: &mut Reader<'a>| {
            let from = r.pos;
            while b.get(r.pos).is_some_and(u8::is_ascii_digit) {
                r.pos += 1;
            }
            r.pos - from
        };
        let int_start = self.pos;
        match digits(self) {
            0 if self.pos >= b.len() => return Err(self.eof("a number")),
            0 => return Err(self.fail("invalid number")),
            n if n > 1 && b[int_start] == b'0' => {
                return Err(self.fail_at(int_start + 1, "invalid number".into(), false));
            }
            _ => {}
        }
        let mut integer = true;
        if b.get(self.pos) == Some(&b'.') {
            integer = false;
            self.pos += 1;
            if digits(self) == 0 {
                return Err(if self.pos >= b.len() {
                    self.eof("a number")
                } else {
                    self.fail("invalid number")
                });
            }
        }
        if matches!(b.get(self.pos), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            if matches!(b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(if self.pos >= b.len() {
                    self.eof("a number")
                } else {
                    self.fail("invalid number")
                });
            }
        }
        Ok(Number {
            text: &self.text[start..self.pos],
            negative,
            integer,
        })
    }

    /// Reads a whole number of at most `max`, named `ty` in messages.
    fn unsigned(&mut self, max: u64, ty: &str) -> Result<u64> {
        // The common case in one pass: digits (no leading zero) that fit, with no fraction or
        // exponent after them. Anything else is read again below from the same place, which
        // says what is wrong as it always did. (Event batches are mostly such numbers: reading
        // each twice was a good part of a live page's decoding.)
        if let Some(first @ b'0'..=b'9') = self.peek() {
            let b = self.bytes();
            let (mut value, mut at) = (u64::from(first - b'0'), self.pos + 1);
            if first != b'0' {
                // Up to 19 digits always fit in a u64: no check per digit.
                let short = b.len().min(self.pos + 19);
                while at < short && b[at].is_ascii_digit() {
                    value = value * 10 + u64::from(b[at] - b'0');
                    at += 1;
                }
            }
            // A 20th digit, a fraction or an exponent: the careful read below.
            if value <= max && !matches!(b.get(at), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
                self.pos = at;
                return Ok(value);
            }
        }
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.unexpected(ty));
        }
        let start = self.pos;
        let n = self.number()?;
        if !n.integer {
            self.pos = start;
            return Err(self.unexpected(ty));
        }
        let value = if n.negative {
            None
        } else {
            n.text.bytes().try_fold(0u64, |v, d| {
                v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
        };
        match value {
            Some(v) if v <= max => Ok(v),
            _ => Err(self.fail_at(
                self.pos.saturating_sub(1),
                format!("invalid value: integer `{}`, expected {ty}", n.text),
                false,
            )),
        }
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        self.unsigned(u64::MAX, "u64")
    }

    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        self.unsigned(u64::from(u32::MAX), "u32").map(|v| v as u32)
    }

    /// Reads an `i32`.
    pub fn i32(&mut self) -> Result<i32> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.unexpected("i32"));
        }
        let start = self.pos;
        let n = self.number()?;
        if !n.integer {
            self.pos = start;
            return Err(self.unexpected("i32"));
        }
        let magnitude = n
            .text
            .trim_start_matches('-')
            .bytes()
            .try_fold(0i64, |v, d| {
                v.checked_mul(10)?.checked_add(i64::from(d - b'0'))
            });
        let value = magnitude.map(|m| if n.negative { -m } else { m });
        match value.and_then(|v| i32::try_from(v).ok()) {
            Some(v) => Ok(v),
            None => Err(self.fail_at(
                self.pos.saturating_sub(1),
                format!("invalid value: integer `{}`, expected i32", n.text),
                false,
            )),
        }
    }

    /// Reads an `f64` (correctly rounded for up to 19 significant digits and exponents within
    /// ±21 of the digits, which covers what any encoder writes for everyday figures; nearest
    /// within a few units in the last place beyond).
    pub fn f64(&mut self) -> Result<f64> {
        if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            return Err(self.unexpected("f64"));
        }
        let start = self.pos;
        let n = self.number()?;
        let value = parse_f64(n.text);
        if value.is_finite() {
            Ok(value)
        } else {
            // As serde_json: a number beyond f64 is refused, not read as infinity.
            Err(self.fail_at(start, "number out of range".into(), false))
        }
    }

    /// Reads an object, handing each field's name to `field`, which must read its value (or
    /// [`skip`](Reader::skip) it). `expected` names the object in a message if it is not one.
    pub fn object(
        &mut self,
        expected: &str,
        field: &mut dyn FnMut(&mut Reader<'a>, &str) -> Result<()>,
    ) -> Result<()> {
        if self.peek() != Some(b'{') {
            return Err(self.unexpected(expected));
        }
        self.pos += 1;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                Some(b'}') => return Err(self.fail("trailing comma")),
                None => return Err(self.eof("an object")),
                Some(_) => return Err(self.fail("key must be a string")),
            }
            let key = self.string()?;
            match self.peek() {
                Some(b':') => self.pos += 1,
                None => return Err(self.eof("an object")),
                Some(_) => return Err(self.fail("expected `:`")),
            }
            field(self, &key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.eof("an object")),
                Some(_) => return Err(self.fail("expected `,` or `}`")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array, calling `item` for each element, which must read it.
    pub fn array(
        &mut self,
        expected: &str,
        item: &mut dyn FnMut(&mut Reader<'a>) -> Result<()>,
    ) -> Result<()> {
        if self.peek() != Some(b'[') {
            return Err(self.unexpected(expected));
        }
        self.pos += 1;
        self.enter()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            match self.peek() {
                Some(b']') => return Err(self.fail("trailing comma")),
                None => return Err(self.eof("a list")),
                Some(_) => {}
            }
            item(self)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.eof("a list")),
                Some(_) => return Err(self.fail("expected `,` or `]`")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail("recursion limit exceeded"));
        }
        Ok(())
    }

    /// Reads a value of any kind and drops it (a field nobody asked for).
    pub fn skip(&mut self) -> Result<()> {
        match self.peek() {
            None => Err(self.eof("a value")),
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object("a map", &mut |r, _| r.skip()),
            Some(b'[') => self.array("a sequence", &mut |r| r.skip()),
            Some(b't' | b'f') => self.bool().map(drop),
            Some(b'n') => self.null().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(_) => Err(self.fail("expected value")),
        }
    }

    /// Checks that only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.fail_at(self.pos + 1, "trailing characters".into(), false)),
        }
    }

    /// Where the reader is (to come back to with [`read_at`](Reader::read_at)).
    pub fn position(&mut self) -> usize {
        self.peek();
        self.pos
    }

    /// Reads with `f` from an earlier `position`, then carries on from where it was.
    pub fn read_at<T>(
        &mut self,
        position: usize,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<T> {
        let (here, depth) = (self.pos, self.depth);
        self.pos = position;
        let value = f(self);
        self.pos = here;
        self.depth = depth;
        value
    }

    /// Reads a field's value into its slot; a second value for the same field is an error.
    pub fn field<T: FromJson>(&mut self, slot: &mut Option<T>, name: &str) -> Result<()> {
        if slot.is_some() {
            return Err(self.duplicate(name));
        }
        *slot = Some(T::read(self)?);
        Ok(())
    }

    /// serde's "duplicate field" error (out of line: [`field`](Reader::field) is
    /// compiled once per type).
    #[inline(never)]
    pub fn duplicate(&self, name: &str) -> JsonError {
        self.fail(format!("duplicate field `{name}`"))
    }

    /// A field's value once its object is read: an absent one is what its type makes of
    /// absence, or the "missing field" error.
    pub fn need<T: FromJson>(&self, slot: Option<T>, name: &str) -> Result<T> {
        match slot.or_else(T::absent) {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    /// serde's "missing field" error.
    #[inline(never)]
    pub fn missing(&self, name: &str) -> JsonError {
        self.fail(format!("missing field `{name}`"))
    }

    /// serde's "unknown variant" error.
    pub fn unknown_variant(&self, name: &str, names: &[&str]) -> JsonError {
        self.fail(format!(
            "unknown variant `{name}`, expected {}",
            one_of(names)
        ))
    }

    /// serde's "unknown field" error (for a type that refuses fields it does not know).
    pub fn unknown_field(&self, name: &str, names: &[&str]) -> JsonError {
        self.fail(format!(
            "unknown field `{name}`, expected {}",
            one_of(names)
        ))
    }

    /// Whether a string comes next.
    pub fn is_string(&mut self) -> bool {
        self.peek() == Some(b'"')
    }

    /// Whether an object comes next.
    pub fn is_object(&mut self) -> bool {
        self.peek() == Some(b'{')
    }

    /// Whether an array comes next.
    pub fn is_array(&mut self) -> bool {
        self.peek() == Some(b'[')
    }

    /// Whether a number comes next.
    pub fn is_number(&mut self) -> bool {
        matches!(self.peek(), Some(b'-' | b'0'..=b'9'))
    }

    /// Reads an externally tagged variant written as an object of one field, `{"name": …}`:
    /// `data` reads the value of the variant at that position in `names`.
    pub fn one_variant(
        &mut self,
        expected: &str,
        names: &[&str],
        data: &mut dyn FnMut(&mut Reader<'a>, usize) -> Result<()>,
    ) -> Result<()> {
        let mut seen = false;
        self.object(expected, &mut |r, key| {
            if seen {
                return Err(r.fail("expected `}`"));
            }
            seen = true;
            match names.iter().position(|n| *n == key) {
                Some(i) => data(r, i),
                None => Err(r.unknown_variant(key, names)),
            }
        })
    }

    /// Reads a name from `names` (a unit variant), as its position.
    pub fn name(&mut self, names: &[&str]) -> Result<usize> {
        let s = self.string()?;
        names
            .iter()
            .position(|n| *n == s)
            .ok_or_else(|| self.unknown_variant(&s, names))
    }
}

/// "one of `a`, `b`", "`a` or `b`", "`a`", as serde lists what it expected.
fn one_of(names: &[&str]) -> String {
    let quoted = |n: &&str| format!("`{n}`");
    match names {
        [] => "nothing".into(),
        [one] => quoted(one),
        [a, b] => format!("{} or {}", quoted(a), quoted(b)),
        _ => format!(
            "one of {}",
            names.iter().map(quoted).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A number as it stands in the text.
struct Number<'a> {
    text: &'a str,
    negative: bool,
    integer: bool,
}

/// Powers of ten exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A number's value (its text is valid JSON). Without core's float parser (10 kB of tables
/// in the page): the decimal digits `m` and exponent `e` are turned into the nearest `f64` by
/// integer arithmetic where `m · 10^e` can be held exactly (or as a quotient with its
/// remainder), and by multiplying by powers of ten beyond.
fn parse_f64(text: &str) -> f64 {
    let (digits, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let negative = digits.starts_with('-');
    // The digits as a whole number `m` and where the decimal point puts them (`e`); digits
    // beyond what a u64 holds are dropped and counted, and make the value inexact unless zero.
    let (mut m, mut e, mut exact, mut in_fraction) = (0u64, 0i32, true, false);
    for c in digits.trim_start_matches('-').bytes() {
        if c == b'.' {
            in_fraction = true;
            continue;
        }
        let d = u64::from(c - b'0');
        match m.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => {
                m = v;
                e -= i32::from(in_fraction);
            }
            None => {
                exact &= d == 0;
                e += i32::from(!in_fraction);
            }
        }
    }
    if !exponent.is_empty() {
        // Beyond i32 the value is 0 or infinite anyway.
        let huge = if exponent.starts_with('-') {
            -100_000
        } else {
            100_000
        };
        e = e.saturating_add(exponent.parse::<i32>().unwrap_or(huge));
    }
    // Beyond ±400 the value is 0 or infinite whatever its digits (at most 20 of them count):
    // clamped, nothing below has to care how far.
    let e = e.clamp(-400, 400);
    let magnitude = if m == 0 {
        0.0
    } else if exact {
        nearest(m, e)
    } else {
        approximate(m, e)
    };
    if negative { -magnitude } else { magnitude }
}

/// `m · 10^e` correctly rounded where 128-bit integers hold it (`e` from −38 to about 19),
/// else approximate.
fn nearest(m: u64, e: i32) -> f64 {
    if (0..=38).contains(&e) {
        if let Some(v) = u128::from(m).checked_mul(10u128.pow(e as u32)) {
            return round_u128(v, 0, false);
        }
    } else if (-38..0).contains(&e) {
        // Long division of m · 2^s by 10^-e until the quotient has 66 bits, the rest of the
        // remainder kept as a sticky bit for the rounding.
        let p = 10u128.pow((-e) as u32);
        let (mut q, mut r) = (u128::from(m) / p, u128::from(m) % p);
        let mut s = 0;
        while q < 1 << 65 {
            r <<= 1;
            q <<= 1;
            s += 1;
            if r >= p {
                r -= p;
                q |= 1;
            }
        }
        return round_u128(q, -s, r != 0);
    }
    approximate(m, e)
}

/// `v · 2^shift` rounded to the nearest `f64` (ties to even); `sticky` says that bits below
/// `v` were not zero.
fn round_u128(v: u128, shift: i32, sticky: bool) -> f64 {
    if v == 0 {
        return 0.0;
    }
    let bits = 128 - v.leading_zeros() as i32;
    if bits <= 53 {
        return scale(v as u64 as f64, shift);
    }
    let drop = bits - 53;
    let mut top = (v >> drop) as u64;
    let half = 1u128 << (drop - 1);
    let low = v & ((1u128 << drop) - 1);
    let round_up = low > half || (low == half && (sticky || top & 1 == 1));
    if round_up {
        top += 1;
    }
    scale(top as f64, shift + drop)
}

/// `x · 2^k`, exact while the result is a normal number.
fn scale(mut x: f64, mut k: i32) -> f64 {
    while k > 0 {
        let step = k.min(60);
        x *= (1u64 << step) as f64;
        k -= step;
    }
    while k < 0 {
        let step = (-k).min(60);
        x /= (1u64 << step) as f64;
        k += step;
    }
    x
}

/// `m · 10^e` by multiplying by exact powers of ten (a few units in the last place).
fn approximate(m: u64, mut e: i32) -> f64 {
    let mut x = m as f64;
    while e > 0 {
        let step = e.min(22);
        x *= POW10[step as usize];
        e -= step;
        if x.is_infinite() {
            return x;
        }
    }
    while e < 0 {
        let step = (-e).min(22);
        x /= POW10[step as usize];
        e += step;
        if x == 0.0 {
            return x;
        }
    }
    x
}

/// The scalars, each read by the `Reader` method of its type.
macro_rules! scalar {
    ($($ty:ty => |$r:ident| $read:expr;)*) => {
        $(impl FromJson for $ty {
            fn read($r: &mut Reader<'_>) -> Result<$ty> {
                $read
            }
        })*
    };
}

scalar! {
    bool => |r| r.bool();
    u8 => |r| r.unsigned(u64::from(u8::MAX), "u8").map(|v| v as u8);
    u32 => |r| r.u32();
    u64 => |r| r.u64();
    i32 => |r| r.i32();
    f64 => |r| r.f64();
    String => |r| r.string().map(Cow::into_owned);
}

impl<T: FromJson> FromJson for Option<T> {
    fn read(r: &mut Reader<'_>) -> Result<Option<T>> {
        if r.null()? {
            Ok(None)
        } else {
            T::read(r).map(Some)
        }
    }

    fn absent() -> Option<Option<T>> {
        Some(None)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Vec<T>> {
        let mut items = Vec::new();
        r.array("a sequence", &mut |r| {
            items.push(T::read(r)?);
            Ok(())
        })?;
        Ok(items)
    }
}

/// A pair, written as a list of two.
impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    fn read(r: &mut Reader<'_>) -> Result<(A, B)> {
        let (mut a, mut b, mut n) = (None, None, 0);
        r.array("a tuple of size 2", &mut |r| {
            match n {
                0 => a = Some(A::read(r)?),
                1 => b = Some(B::read(r)?),
                _ => return Err(r.fail("invalid length 3 or more, expected a tuple of size 2")),
            }
            n += 1;
            Ok(())
        })?;
        match (a, b) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(r.fail(format!("invalid length {n}, expected a tuple of size 2"))),
        }
    }
}

impl<T: FromJson> FromJson for Box<T> {
    fn read(r: &mut Reader<'_>) -> Result<Box<T>> {
        T::read(r).map(Box::new)
    }
}

/// Writes [`FromJson`] for a struct with named fields, read by their names. A field marked
/// `: default` is its type's default when absent (serde's `#[serde(default)]`); an `Option`
/// field is `None` when absent; any other absent field is an error. `deny` before the type
/// refuses fields it does not name (serde's `deny_unknown_fields`).
#[macro_export]
macro_rules! json_struct {
    (deny $ty:ident { $($field:ident $(: $how:ident)?),* $(,)? }) => {
        $crate::json_struct!(@impl $ty, true, { $($field $(: $how)?),* });
    };
    ($ty:ident { $($field:ident $(: $how:ident)?),* $(,)? }) => {
        $crate::json_struct!(@impl $ty, false, { $($field $(: $how)?),* });
    };
    (@impl $ty:ident, $deny:expr, { $($field:ident $(: $how:ident)?),* }) => {
        impl $crate::json::FromJson for $ty {
            fn read(r: &mut $crate::json::Reader<'_>) -> $crate::json::Result<$ty> {
                const NAMES: &[&str] = &[$(stringify!($field)),*];
                $(let mut $field = None;)*
                r.object(concat!("struct ", stringify!($ty)), &mut |r, key| match key {
                    $(stringify!($field) => r.field(&mut $field, stringify!($field)),)*
                    _ if $deny => Err(r.unknown_field(key, NAMES)),
                    _ => r.skip(),
                })?;
                // Every field's value or absence first, then one way out if one is missing
                // (an early return per field would drop the others at each).
                let mut missing = None;
                $(let $field = $crate::json_struct!(@fill $field, missing $(, $how)?);)*
                if let Some(name) = missing {
                    return Err(r.missing(name));
                }
                Ok($ty {
                    $($field: $crate::json_struct!(@take $field $(, $how)?),)*
                })
            }
        }
    };
    (@fill $field:ident, $missing:ident) => {
        $crate::json::present($field, &mut $missing, stringify!($field))
    };
    (@fill $field:ident, $missing:ident, default) => { $field };
    (@take $field:ident) => { $crate::json::checked($field) };
    (@take $field:ident, default) => { $field.unwrap_or_default() };
}

/// A field's value, or what its type makes of absence; notes the first field that has
/// neither in `missing` (for [`json_struct!`]).
pub fn present<T: FromJson>(
    slot: Option<T>,
    missing: &mut Option<&'static str>,
    name: &'static str,
) -> Option<T> {
    let value = slot.or_else(T::absent);
    if value.is_none() && missing.is_none() {
        *missing = Some(name);
    }
    value
}

/// A field's value after [`present`] found every field there (for [`json_struct!`]).
pub fn checked<T>(value: Option<T>) -> T {
    match value {
        Some(v) => v,
        None => unreachable!("json_struct! returns before taking a missing field"),
    }
}

/// Writes [`FromJson`] for an enum of unit variants, each read from its name.
#[macro_export]
macro_rules! json_names {
    ($ty:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $crate::json::FromJson for $ty {
            fn read(r: &mut $crate::json::Reader<'_>) -> $crate::json::Result<$ty> {
                const NAMES: &[&str] = &[$($name),*];
                const VALUES: &[$ty] = &[$($ty::$variant),*];
                r.name(NAMES).map(|i| VALUES[i])
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Default)]
    struct Inner {
        a: u32,
        b: Option<String>,
        c: Vec<u64>,
    }
    json_struct!(Inner { a, b, c: default });

    #[derive(Debug, PartialEq)]
    struct Strict {
        x: i32,
    }
    json_struct!(deny Strict { x });

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        DarkBlue,
    }
    json_names!(Colour { Red = "red", DarkBlue = "dark_blue" });

    fn err<T: FromJson + fmt::Debug>(text: &str) -> String {
        from_str::<T>(text).expect_err(text).to_string()
    }

    #[test]
    fn structs_read_in_any_order_and_ignore_what_they_do_not_know() {
        let v: Inner =
            from_str(r#" {"c":[1,2],"z":{"q":[null,true,-1.5e3,"\""]},"a":7} "#).expect("reads");
        assert_eq!(
            v,
            Inner {
                a: 7,
                b: None,
                c: vec![1, 2]
            }
        );
        let v: Inner = from_str(r#"{"a":0,"b":"x\u00fc\n"}"#).expect("reads");
        assert_eq!(v.b.as_deref(), Some("xü\n"));
        assert_eq!(v.c, Vec::<u64>::new());
        assert_eq!(from_str::<Strict>(r#"{"x":-5}"#), Ok(Strict { x: -5 }));
    }

    #[test]
    fn what_is_wrong_is_said_in_serde_s_words_with_where() {
        assert_eq!(
            err::<Inner>(r#"{"b":null}"#),
            "missing field `a` at line 1 column 10"
        );
        assert!(err::<Inner>(r#"{"a":1,"a":2}"#).starts_with("duplicate field `a`"));
        assert!(
            err::<Inner>(r#"{"a":-1}"#).starts_with("invalid value: integer `-1`, expected u32")
        );
        assert!(
            err::<Inner>(r#"{"a":4294967296}"#)
                .starts_with("invalid value: integer `4294967296`, expected u32")
        );
        assert!(
            err::<Inner>(r#"{"a":1.5}"#)
                .starts_with("invalid type: floating point `1.5`, expected u32")
        );
        assert!(
            err::<Inner>(r#"{"a":"1"}"#).starts_with(r#"invalid type: string "1", expected u32"#)
        );
        assert!(err::<Inner>("[1]").starts_with("invalid type: sequence, expected struct Inner"));
        assert!(
            err::<Inner>(r#"{"a":1,"c":{}}"#).starts_with("invalid type: map, expected a sequence")
        );
        assert!(err::<Strict>(r#"{"x":1,"y":2}"#).starts_with("unknown field `y`, expected `x`"));
        assert!(
            err::<Colour>(r#""green""#)
                .starts_with("unknown variant `green`, expected `red` or `dark_blue`")
        );
        assert!(err::<Inner>("{\"a\":1}\n x").starts_with("trailing characters at line 2"));
        assert!(err::<Inner>(r#"{"a":1,}"#).starts_with("trailing comma"));
        assert!(err::<Inner>(r#"{"a":01}"#).starts_with("invalid number"));
        assert!(err::<Inner>(r#"{"a" 1}"#).starts_with("expected `:`"));
        assert!(err::<Inner>(r#"{"a":1 "b":2}"#).starts_with("expected `,` or `}`"));
        assert!(err::<Inner>(r#"{1:2}"#).starts_with("key must be a string"));
        assert!(err::<Inner>(r#"{"a":1,"#).starts_with("EOF while parsing an object"));
        assert!(err::<Inner>(r#"{"a""#).starts_with("EOF while parsing an object"));
        assert!(err::<Vec<u32>>("[1,]").starts_with("trailing comma"));
        assert!(err::<Vec<u32>>("[1 2]").starts_with("expected `,` or `]`"));
        assert!(err::<Vec<u32>>("[1,").starts_with("EOF while parsing a list"));
        assert!(err::<Vec<u32>>("[1").starts_with("EOF while parsing a list"));
        assert!(err::<String>("\"a\u{1}\"").starts_with("control character"));
        assert!(err::<String>(r#""\ud800""#).starts_with("lone leading surrogate"));
        assert!(err::<String>(r#""\q""#).starts_with("invalid escape"));
        assert!(err::<bool>("tru").starts_with("EOF while parsing a value"));
        assert!(err::<bool>("trux").starts_with("expected ident"));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(
            err::<Vec<Vec<u32>>>(&deep).starts_with("invalid type: sequence")
                || err::<Vec<Vec<u32>>>(&deep).starts_with("recursion limit")
        );
        let mut r = Reader::new(&deep);
        assert!(
            r.skip()
                .expect_err("too deep")
                .message()
                .contains("recursion limit exceeded")
        );
    }

    #[test]
    fn a_text_cut_short_says_so() {
        for cut in [
            r#"{"a":1"#,
            r#"{"a":"#,
            r#"{"a":1,"b":"x"#,
            r#"{"a":1,"c":[1,"#,
            "",
            "  ",
            "-",
            r#"{"a":1.5e"#,
            r#"{"a":1,"b":"\ud83d"#,
            r#"{"a":1,"b":"\ud83d\"#,
            r#"{"a":1,"b":"\ud83d\ude"#,
        ] {
            let e = from_str::<Inner>(cut).expect_err(cut);
            assert!(e.is_eof(), "{cut}: {e}");
        }
        let e = from_str::<Inner>(r#"{"a":1} {"#).expect_err("trailing");
        assert!(!e.is_eof());
    }

    #[test]
    fn strings_unescape_every_escape_and_pairs_of_surrogates() {
        let s: String = from_str(r#""\"\\\/\b\f\n\r\t\u0041\ud83d\ude00é""#).expect("reads");
        assert_eq!(s, "\"\\/\u{8}\u{c}\n\r\tA😀é");
        // Round trip of every kind of character through serde_json's encoder.
        let all: String =
            (0u32..0x800).filter_map(char::from_u32).collect::<String>() + "😀\u{10ffff}";
        let json = serde_json::to_string(&all).expect("encode");
        assert_eq!(from_str::<String>(&json), Ok(all));
    }

    /// Whole numbers are read in one pass when they can be, and again carefully when not:
    /// both agree with serde_json on every value and every refusal, at the edges where one
    /// hands over to the other.
    #[test]
    fn whole_numbers_read_as_serde_json_reads_them() {
        fn same<T>(text: &str)
        where
            T: FromJson + serde::de::DeserializeOwned + PartialEq + fmt::Debug,
        {
            let (ours, theirs) = (from_str::<T>(text), serde_json::from_str::<T>(text));
            assert_eq!(
                ours.as_ref().ok(),
                theirs.as_ref().ok(),
                "{text:?}: {ours:?}"
            );
        }
        let cases = "0 7 00 01 10 4294967295 4294967296 18446744073709551615 \
            18446744073709551616 99999999999999999999 184467440737095516150 1.5 12. 1e3 1E3 \
            0e1 0.0 -1 -0 0x1 1a - 18446744073709551615.0 [1,02] [7,8] [1.0] [3e0]";
        for text in cases.split_whitespace().chain([" 42", "42 ", ""]) {
            same::<u64>(text);
            same::<u32>(text);
            same::<Vec<u64>>(text);
        }
        // Where a refusal points is where the careful read finds the fault.
        let e = from_str::<u32>("4294967296").expect_err("too big");
        assert!(e.to_string().contains("expected u32"), "{e}");
    }

    #[test]
    fn numbers_read_at_their_edges() {
        assert_eq!(from_str::<u64>("18446744073709551615"), Ok(u64::MAX));
        assert!(from_str::<u64>("18446744073709551616").is_err());
        assert_eq!(from_str::<i32>("-2147483648"), Ok(i32::MIN));
        assert!(from_str::<i32>("2147483648").is_err());
        assert_eq!(from_str::<u8>("255"), Ok(255));
        assert!(from_str::<u8>("256").is_err());
        assert!(from_str::<u32>("1e3").is_err());
        assert_eq!(from_str::<f64>("0"), Ok(0.0));
        assert_eq!(from_str::<f64>("-0.0").map(f64::is_sign_negative), Ok(true));
        // Beyond f64: refused, as serde_json refuses it; below its smallest: zero.
        for text in ["1e400", "-1e400", "1e2147483648", "123e2147483647"] {
            let e = from_str::<f64>(text).expect_err(text);
            assert!(e.to_string().starts_with("number out of range"), "{e}");
        }
        for text in [
            "1e-400",
            "1e-2147483648",
            "0.5e-2147483647",
            "-7e-99999999999",
        ] {
            assert_eq!(from_str::<f64>(text).map(f64::abs), Ok(0.0), "{text}");
        }
    }

    #[test]
    fn floats_read_back_exactly_what_the_encoder_wrote() {
        // A deterministic spread of values: ratios as runs measure them, and bit patterns
        // across the exponents a figure can have.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut values = vec![1.0, 0.1, 1.92, 2.0 / 3.0, 1e-7, 123_456.789, 1e21, 1e-30];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let exp = 1023 - 30 + (x % 60); // 2^-30 .. 2^30
            values.push(f64::from_bits((exp << 52) | (x >> 12)));
            values.push((x % 10_000_000) as f64 / (1 + x % 997) as f64);
        }
        let mut misses = 0;
        for v in values {
            let json = serde_json::to_string(&v).expect("encode");
            let ours = from_str::<f64>(&json).expect(&json);
            let std: f64 = json.parse().expect("std");
            if ours != std {
                misses += 1;
                // Beyond the exact range: still within a few units in the last place.
                let ulps = (ours.to_bits() as i64 - std.to_bits() as i64).abs();
                assert!(ulps <= 4, "{json}: {ours} vs {std}");
            }
        }
        // Everyday figures (within 2^±30) are read exactly.
        assert_eq!(misses, 0);
    }

    #[test]
    fn quoted_strings_read_back_as_serde_writes_them() {
        for text in [
            "",
            "plain",
            "a \"q\" \\ / </script> \u{1}\u{8}\u{c}\u{1f}\n\t\r é 😀",
        ] {
            let q = quote(text);
            assert_eq!(from_str::<String>(&q).as_deref(), Ok(text), "{q}");
            assert_eq!(q, serde_json::to_string(text).expect("encode"));
        }
    }

    #[test]
    fn positions_can_be_read_again() {
        let mut r = Reader::new(r#"{"data":{"a":1},"type":"x"}"#);
        let mut at = None;
        let mut kind: Option<String> = None;
        r.object("a message", &mut |r, key| match key {
            "data" => {
                at = Some(r.position());
                r.skip()
            }
            "type" => r.field(&mut kind, "type"),
            _ => r.skip(),
        })
        .expect("reads");
        let inner: Inner = r
            .read_at(at.expect("data"), Inner::read)
            .expect("reads again");
        assert_eq!(inner.a, 1);
        assert_eq!(kind.as_deref(), Some("x"));
        r.end().expect("nothing after");
    }
}
