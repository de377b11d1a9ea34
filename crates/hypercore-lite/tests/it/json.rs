//! A minimal JSON reader for the JavaScript fixtures (`expected.json`, `corruption.json`,
//! `proofs.json`), so the hermetic tests need no JSON dependency. It accepts the JSON that
//! `JSON.stringify` writes: objects, arrays, strings with escapes, integers, `true`, `false`,
//! `null`. Numbers are kept as text and parsed on access.

use std::fmt;

/// A parsed JSON value.
#[derive(Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number as written.
    Num(String),
    Str(String),
    Arr(Vec<Self>),
    /// Members in file order.
    Obj(Vec<(String, Self)>),
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Num(n) => f.write_str(n),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Arr(a) => f.debug_list().entries(a).finish(),
            Self::Obj(o) => f
                .debug_map()
                .entries(o.iter().map(|(k, v)| (k, v)))
                .finish(),
        }
    }
}

static NULL: Json = Json::Null;

impl Json {
    /// Parses a whole document.
    pub(crate) fn parse(text: &str) -> Self {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing bytes after the JSON value");
        v
    }

    /// Reads and parses a file.
    pub(crate) fn read(path: &std::path::Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Self::parse(&text)
    }

    /// Member `key` of an object (`null` when absent or not an object).
    pub(crate) fn get(&self, key: &str) -> &Self {
        match self {
            Self::Obj(members) => members
                .iter()
                .find(|(k, _)| k == key)
                .map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    pub(crate) const fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// `None` for `null`, else `Some(self)`.
    pub(crate) const fn opt(&self) -> Option<&Self> {
        if self.is_null() { None } else { Some(self) }
    }

    pub(crate) fn u64(&self) -> u64 {
        match self {
            Self::Num(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    pub(crate) fn str(&self) -> &str {
        match self {
            Self::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    pub(crate) fn bool(&self) -> bool {
        match self {
            Self::Bool(b) => *b,
            other => panic!("not a bool: {other:?}"),
        }
    }

    pub(crate) fn arr(&self) -> &[Self] {
        match self {
            Self::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// A hex string as bytes.
    pub(crate) fn hex(&self) -> Vec<u8> {
        unhex(self.str())
    }

    /// A 64-digit hex string as 32 bytes.
    pub(crate) fn hex32(&self) -> [u8; 32] {
        self.hex().try_into().expect("32 bytes of hex")
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Bytes of a hex string.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) {
        self.ws();
        assert_eq!(self.s.get(self.i), Some(&b), "expected {:?}", b as char);
        self.i += 1;
    }

    fn lit(&mut self, word: &str, v: Json) -> Json {
        assert!(self.s[self.i..].starts_with(word.as_bytes()), "bad literal");
        self.i += word.len();
        v
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s.get(self.i).copied().expect("unexpected end of JSON") {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(members);
                }
                loop {
                    self.ws();
                    let k = self.string();
                    self.eat(b':');
                    let v = self.value();
                    members.push((k, v));
                    self.ws();
                    self.i += 1;
                    match self.s[self.i - 1] {
                        b',' => {}
                        b'}' => return Json::Obj(members),
                        c => panic!("unexpected {:?} in object", c as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    self.i += 1;
                    match self.s[self.i - 1] {
                        b',' => {}
                        b']' => return Json::Arr(items),
                        c => panic!("unexpected {:?} in array", c as char),
                    }
                }
            }
            b'"' => Json::Str(self.string()),
            b't' => self.lit("true", Json::Bool(true)),
            b'f' => self.lit("false", Json::Bool(false)),
            b'n' => self.lit("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                assert!(self.i > start, "unexpected byte in JSON");
                Json::Num(String::from_utf8(self.s[start..self.i].to_vec()).expect("ascii"))
            }
        }
    }

    fn hex4(&mut self) -> u32 {
        let h = std::str::from_utf8(&self.s[self.i..self.i + 4]).expect("ascii");
        self.i += 4;
        u32::from_str_radix(h, 16).expect("\\u escape")
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).expect("utf-8 string"),
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
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
                            let mut u = self.hex4();
                            if (0xd800..0xdc00).contains(&u) && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4();
                                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                            }
                            char::from_u32(u).unwrap_or('\u{fffd}')
                        }
                        other => panic!("bad escape \\{}", other as char),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

#[test]
fn parses_what_json_stringify_writes() {
    let v =
        Json::parse(r#"{"a": [1, -2, "x\"y\u00e9\ud83d\ude00"], "b": null, "c": true, "d": {}}"#);
    assert_eq!(v.get("a").arr()[0].u64(), 1);
    assert_eq!(v.get("a").arr()[2].str(), "x\"y\u{e9}\u{1f600}");
    assert!(v.get("b").is_null() && v.get("missing").is_null());
    assert!(v.get("c").bool());
    assert_eq!(v.get("d"), &Json::Obj(Vec::new()));
    assert_eq!(hex(&unhex("00ff10")), "00ff10");
}
