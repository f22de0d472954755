//! etcdctl's transaction language, read from stdin, a file or an interactive prompt:
//!
//! ```text
//! value("/app/mode") = "blue"        <- compares, one per line
//! mod("/app/lock") < "42"
//!                                    <- blank line
//! put /app/mode green                <- requests run when every compare holds
//! get /app --prefix
//!                                    <- blank line
//! get /app/mode                      <- requests run otherwise
//! ```
//!
//! Compare targets are `value`/`val`, `mod`/`m`, `create`/`c`, `version`/`ver` and
//! `lease` (a hexadecimal lease ID, as vanectl prints them); operators `=`, `!=`, `<`,
//! `>`; keys and values are Go-quoted strings (`"a\tb"`, `"\xff"`). Requests are `put`,
//! `get` and `del` lines with the flags of those verbs. Unlike etcdctl, a syntax error
//! names its line, a missing final newline is fine, and text after the failure section
//! is refused instead of ignored.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

use clap::{Parser, Subcommand};
use vane_client::txn::{self, CompareOp};
use vane_proto::etcdserverpb::request_op::Request;
use vane_proto::etcdserverpb::{Compare, RequestOp, TxnRequest};

use super::cli::{DelArgs, GetArgs, PutArgs, one_line};
use super::exit::{CliError, Exit};
use super::requests;

/// Which part of the script the next line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Compares, until the first blank line.
    Compares,
    /// Requests run on success, until the second blank line.
    Success,
    /// Requests run on failure, until the third blank line or the end of input.
    Failure,
    /// The script is complete; only blank lines may follow.
    Done,
}

impl Section {
    /// The prompt etcdctl's interactive mode prints when this section starts.
    pub fn prompt(self) -> Option<&'static str> {
        match self {
            Section::Compares => Some("compares:"),
            Section::Success => Some("success requests (get, put, del):"),
            Section::Failure => Some("failure requests (get, put, del):"),
            Section::Done => None,
        }
    }
}

/// A syntax error, with the 1-based line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl From<ScriptError> for CliError {
    fn from(error: ScriptError) -> Self {
        CliError::new(
            Exit::InvalidInput,
            format!("txn line {}: {}", error.line, error.message),
        )
    }
}

/// Reads a transaction line by line, so the interactive mode can prompt between
/// sections and a file can be parsed with the same rules.
#[derive(Debug)]
pub struct TxnParser {
    section: Section,
    line_number: usize,
    request: TxnRequest,
}

impl Default for TxnParser {
    fn default() -> Self {
        TxnParser {
            section: Section::Compares,
            line_number: 0,
            request: TxnRequest::default(),
        }
    }
}

impl TxnParser {
    /// The section the next line goes to.
    pub fn section(&self) -> Section {
        self.section
    }

    /// Takes one line (with or without its line ending).
    pub fn feed(&mut self, line: &str) -> Result<(), ScriptError> {
        self.line_number += 1;
        let text = line.trim();
        let error = |message: String| ScriptError {
            line: self.line_number,
            message,
        };
        if text.is_empty() {
            self.section = match self.section {
                Section::Compares => Section::Success,
                Section::Success => Section::Failure,
                Section::Failure | Section::Done => Section::Done,
            };
            return Ok(());
        }
        match self.section {
            Section::Compares => {
                let compare = parse_compare(text).map_err(error)?;
                self.request.compare.push(compare);
            }
            Section::Success => {
                let op = parse_request(text).map_err(error)?;
                self.request.success.push(op);
            }
            Section::Failure => {
                let op = parse_request(text).map_err(error)?;
                self.request.failure.push(op);
            }
            Section::Done => {
                return Err(error(format!(
                    "unexpected {text:?} after the failure requests (a txn has three sections: \
                     compares, success requests, failure requests, separated by blank lines)"
                )));
            }
        }
        Ok(())
    }

    /// The transaction, once the input has ended.
    pub fn finish(self) -> Result<TxnRequest, ScriptError> {
        if self.line_number == 0 {
            return Err(ScriptError {
                line: 1,
                message: "empty input: expected compares, a blank line, success requests, a \
                          blank line, failure requests"
                    .to_string(),
            });
        }
        Ok(self.request)
    }
}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<TxnRequest, ScriptError> {
    let mut parser = TxnParser::default();
    for line in text.lines() {
        parser.feed(line)?;
    }
    parser.finish()
}

/// `target("key") op "value"`.
fn parse_compare(line: &str) -> Result<Compare, String> {
    let malformed = |why: &str| {
        format!(
            "malformed comparison {line:?}: {why} (expected e.g. value(\"key\") = \"v\" or \
             mod(\"key\") > \"5\")"
        )
    };
    let (target, rest) = line
        .split_once('(')
        .ok_or_else(|| malformed("no '(' after the target"))?;
    let target = target.trim();
    let mut cursor = Cursor { rest };
    let key = cursor.quoted().map_err(|e| malformed(&e))?;
    cursor.skip_spaces();
    if !cursor.eat(")") {
        return Err(malformed("expected ')' after the key"));
    }
    cursor.skip_spaces();
    let op = if cursor.eat("!=") {
        CompareOp::NotEqual
    } else if cursor.eat("=") {
        CompareOp::Equal
    } else if cursor.eat("<") {
        CompareOp::Less
    } else if cursor.eat(">") {
        CompareOp::Greater
    } else {
        return Err(malformed("the operator must be =, !=, < or >"));
    };
    if cursor.rest.starts_with(['=', '<', '>']) {
        return Err(malformed("the operator must be =, !=, < or >"));
    }
    cursor.skip_spaces();
    let value = if cursor.rest.starts_with(['"', '`']) {
        cursor.quoted().map_err(|e| malformed(&e))?
    } else {
        cursor.bare().as_bytes().to_vec()
    };
    cursor.skip_spaces();
    if !cursor.rest.is_empty() {
        return Err(malformed(&format!(
            "unexpected {:?} at the end",
            cursor.rest
        )));
    }
    let number = |radix: u32| -> Result<i64, String> {
        let text = String::from_utf8_lossy(&value);
        i64::from_str_radix(text.trim(), radix).map_err(|_| {
            if radix == 16 {
                malformed(&format!("{text:?} is not a lease ID in hex"))
            } else {
                malformed(&format!("{text:?} is not a number"))
            }
        })
    };
    Ok(match target {
        "ver" | "version" => txn::compare_version(key, op, number(10)?),
        "c" | "create" => txn::compare_create_revision(key, op, number(10)?),
        "m" | "mod" => txn::compare_mod_revision(key, op, number(10)?),
        "val" | "value" => txn::compare_value(key, op, value),
        "lease" => txn::compare_lease(key, op, number(16)?),
        other => {
            return Err(malformed(&format!(
                "unknown target {other:?} (use value, mod, create, version or lease)"
            )));
        }
    })
}

/// The flags of a request line: the same as the verbs'.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_help_flag = true, name = "txn request")]
struct RequestLine {
    #[command(subcommand)]
    request: RequestVerb,
}

#[derive(Debug, Subcommand)]
enum RequestVerb {
    Get(GetArgs),
    Put(PutArgs),
    #[command(alias = "delete")]
    Del(DelArgs),
}

/// `put k v [flags]`, `get k [end] [flags]` or `del k [end] [flags]`.
fn parse_request(line: &str) -> Result<RequestOp, String> {
    let words: Vec<OsString> = split_words(line)?
        .into_iter()
        .map(OsString::from_vec)
        .collect();
    let parsed = RequestLine::try_parse_from(words).map_err(|e| {
        format!(
            "invalid request {line:?}: {}",
            one_line(&e).split(" (usage:").next().unwrap_or_default()
        )
    })?;
    let cli_error = |e: CliError| format!("invalid request {line:?}: {e}");
    let request = match parsed.request {
        RequestVerb::Get(args) => {
            Request::RequestRange(requests::range_request(&args).map_err(cli_error)?)
        }
        RequestVerb::Put(args) => {
            let value = match &args.value {
                Some(value) => requests::bytes_of(value),
                None if args.ignore_value => Vec::new(),
                None => {
                    return Err(format!(
                        "invalid request {line:?}: put needs a key and a value"
                    ));
                }
            };
            Request::RequestPut(requests::put_request(&args, value).map_err(cli_error)?)
        }
        RequestVerb::Del(args) => {
            Request::RequestDeleteRange(requests::delete_request(&args).map_err(cli_error)?)
        }
    };
    Ok(txn::op(request))
}

/// Splits a line into words like a shell: whitespace separates, `"..."` is a Go-quoted
/// string (escapes allowed), `'...'` is taken literally, and quotes may sit inside a
/// word (`--lease="1f"`).
pub fn split_words(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    let mut cursor = Cursor { rest: line };
    loop {
        cursor.skip_spaces();
        if cursor.rest.is_empty() {
            return Ok(words);
        }
        let mut word = Vec::new();
        while let Some(c) = cursor.rest.chars().next() {
            if c.is_whitespace() {
                break;
            }
            match c {
                '"' | '`' => word.extend(cursor.quoted()?),
                '\'' => {
                    let body = &cursor.rest[1..];
                    let end = body
                        .find('\'')
                        .ok_or_else(|| format!("unterminated ' in {line:?}"))?;
                    word.extend_from_slice(&body.as_bytes()[..end]);
                    cursor.rest = &body[end + 1..];
                }
                c => {
                    let mut buf = [0; 4];
                    word.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    cursor.rest = &cursor.rest[c.len_utf8()..];
                }
            }
        }
        words.push(word);
    }
}

/// A position in a line being parsed.
struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A word up to the next whitespace.
    fn bare(&mut self) -> &str {
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    /// A Go string literal: `"..."` with escapes or `` `...` `` taken literally.
    fn quoted(&mut self) -> Result<Vec<u8>, String> {
        self.skip_spaces();
        if let Some(body) = self.rest.strip_prefix('`') {
            let end = body.find('`').ok_or("unterminated ` string")?;
            self.rest = &body[end + 1..];
            return Ok(body.as_bytes()[..end].to_vec());
        }
        let body = self
            .rest
            .strip_prefix('"')
            .ok_or("expected a double-quoted string")?;
        let mut out = Vec::new();
        let mut chars = body.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &body[at + 1..];
                    return Ok(out);
                }
                '\\' => {
                    let (_, escape) = chars.next().ok_or("unterminated string")?;
                    match escape {
                        'n' => out.push(b'\n'),
                        't' => out.push(b'\t'),
                        'r' => out.push(b'\r'),
                        'a' => out.push(0x07),
                        'b' => out.push(0x08),
                        'f' => out.push(0x0c),
                        'v' => out.push(0x0b),
                        '\\' => out.push(b'\\'),
                        '"' => out.push(b'"'),
                        '\'' => out.push(b'\''),
                        'x' => {
                            let hex: String = (0..2)
                                .filter_map(|_| chars.next())
                                .map(|(_, c)| c)
                                .collect();
                            let byte = u8::from_str_radix(&hex, 16)
                                .map_err(|_| format!("bad escape \\x{hex}"))?;
                            out.push(byte);
                        }
                        'u' | 'U' => {
                            let len = if escape == 'u' { 4 } else { 8 };
                            let hex: String = (0..len)
                                .filter_map(|_| chars.next())
                                .map(|(_, c)| c)
                                .collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad escape \\{escape}{hex}"))?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        '0'..='7' => {
                            let mut digits = String::from(escape);
                            digits.extend((0..2).filter_map(|_| chars.next()).map(|(_, c)| c));
                            let byte = u8::from_str_radix(&digits, 8)
                                .map_err(|_| format!("bad escape \\{digits}"))?;
                            out.push(byte);
                        }
                        other => return Err(format!("unknown escape \\{other}")),
                    }
                }
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        Err("unterminated string".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};

    const ETCDCTL_EXAMPLE: &str =
        "value(\"foo\") = \"baz\"\n\nput foo qux\nget foo\n\nput foo nope\n\n";

    #[test]
    fn parses_etcdctls_three_sections() {
        let request = parse(ETCDCTL_EXAMPLE).unwrap();
        assert_eq!(request.compare.len(), 1);
        assert_eq!(request.compare[0].key, b"foo");
        assert_eq!(request.compare[0].target, CompareTarget::Value as i32);
        assert_eq!(
            request.compare[0].target_union,
            Some(TargetUnion::Value(b"baz".to_vec()))
        );
        assert_eq!(request.success.len(), 2);
        assert_eq!(request.failure.len(), 1);
        match &request.failure[0].request {
            Some(Request::RequestPut(put)) => {
                assert_eq!(
                    (put.key.as_slice(), put.value.as_slice()),
                    (&b"foo"[..], &b"nope"[..])
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compares_take_every_target_and_operator() {
        let request = parse(
            "mod(\"a\") > \"5\"\nc(\"b\") = 0\nver(\"c\") != \"1\"\nlease(\"d\") < \"1f\"\n\
             val(\"e\\tf\") = `raw\\n`\n",
        )
        .unwrap();
        let c = &request.compare;
        assert_eq!(c[0].result, CompareResult::Greater as i32);
        assert_eq!(c[0].target_union, Some(TargetUnion::ModRevision(5)));
        assert_eq!(c[1].target_union, Some(TargetUnion::CreateRevision(0)));
        assert_eq!(c[2].result, CompareResult::NotEqual as i32);
        assert_eq!(c[2].target_union, Some(TargetUnion::Version(1)));
        assert_eq!(c[3].target_union, Some(TargetUnion::Lease(0x1f)));
        assert_eq!(c[4].key, b"e\tf");
        assert_eq!(
            c[4].target_union,
            Some(TargetUnion::Value(b"raw\\n".to_vec()))
        );
        assert!(request.success.is_empty() && request.failure.is_empty());
    }

    #[test]
    fn request_lines_take_verb_flags_and_quotes() {
        let request = parse(
            "\nput \"a key\" \"a\\x00value\" --prev-kv --lease=\"1f\"\nget /app --prefix --limit=2\n\n\
             del a z\n",
        )
        .unwrap();
        assert!(request.compare.is_empty());
        match &request.success[0].request {
            Some(Request::RequestPut(put)) => {
                assert_eq!(put.key, b"a key");
                assert_eq!(put.value, b"a\x00value");
                assert!(put.prev_kv);
                assert_eq!(put.lease, 0x1f);
            }
            other => panic!("{other:?}"),
        }
        match &request.success[1].request {
            Some(Request::RequestRange(range)) => {
                assert_eq!(range.range_end, b"/apq");
                assert_eq!(range.limit, 2);
            }
            other => panic!("{other:?}"),
        }
        match &request.failure[0].request {
            Some(Request::RequestDeleteRange(del)) => assert_eq!(del.range_end, b"z"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_their_line() {
        let error = parse("value(\"foo\") = \"bar\"\nbogus\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(
            error.message.starts_with("malformed comparison \"bogus\""),
            "{error:?}"
        );

        let error = parse("value(\"foo\") == \"bar\"\n").unwrap_err();
        assert!(error.message.contains("=, !=, < or >"), "{error:?}");

        let error = parse("value(\"foo\") = \"bar\"\n\nput onlykey\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error.message.contains("put needs a key and a value"),
            "{error:?}"
        );

        let error = parse("\nfrobnicate x\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(
            error
                .message
                .starts_with("invalid request \"frobnicate x\""),
            "{error:?}"
        );

        let error = parse("\n\n\n\nput a b\n").unwrap_err();
        assert_eq!(error.line, 5);

        let error = parse("").unwrap_err();
        assert_eq!(error.line, 1);

        let cli: CliError = parse("mod(\"k\") > \"x\"\n").unwrap_err().into();
        assert_eq!(cli.exit, Exit::InvalidInput);
        assert!(
            cli.to_string()
                .starts_with("txn line 1: malformed comparison")
        );
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"put "a b" 'c d' --x="1 2" e"#).unwrap(),
            vec![
                b"put".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"--x=1 2".to_vec(),
                b"e".to_vec()
            ]
        );
        assert!(split_words("put \"open").is_err());
    }
}
