//! The in-memory form of rules and the known-servers catalog, after loading
//! and validation.

use std::fmt;

/// How sure a rule is that a match means MCP traffic. Ordered: `Low < Medium < High`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// Parses `low`, `medium` or `high` (exact spelling).
    pub fn parse(s: &str) -> Option<Confidence> {
        match s {
            "low" => Some(Confidence::Low),
            "medium" => Some(Confidence::Medium),
            "high" => Some(Confidence::High),
            _ => None,
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What part of an exchange a condition looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// Request host, port stripped, lower-cased.
    Host,
    /// Request path and query, as sent.
    Path,
    /// Request method (`POST`, `GET`, ...).
    HttpMethod,
    /// Every value of a request header; the name is stored lower-cased.
    RequestHeader(String),
    /// Every value of a response header; the name is stored lower-cased.
    ResponseHeader(String),
    /// Decoded request body (only when it looks like JSON; see docs/rules.md).
    RequestBody,
    /// Decoded response body (only when it looks like JSON).
    ResponseBody,
    /// `data` of each server-sent event.
    SseData,
    /// Event type of each server-sent event (`message` when none was given).
    SseEvent,
    /// Each JSON-RPC method name found by the analyzer (requests, responses, SSE data).
    JsonrpcMethod,
    /// The value at a JSON pointer (RFC 6901) in each JSON payload.
    JsonPointer(String),
    /// Each signal name the JSON-RPC analyzer reported.
    AnalyzerSignal,
    /// Vendor of the known-servers catalog entry whose host equals the request host.
    KnownServer,
    /// Vendor of the catalog entry whose host and endpoint path both match.
    KnownEndpoint,
    /// Server name the client sent in its TLS ClientHello (SNI), lower-cased.
    TlsSni,
}

impl Field {
    /// Parses a `field = "..."` value. `json_pointer` needs its pointer given
    /// separately, so it is returned with an empty pointer.
    pub fn parse(s: &str) -> Option<Field> {
        if let Some(name) = s.strip_prefix("request_header.") {
            return valid_header_name(name)
                .then(|| Field::RequestHeader(name.to_ascii_lowercase()));
        }
        if let Some(name) = s.strip_prefix("response_header.") {
            return valid_header_name(name)
                .then(|| Field::ResponseHeader(name.to_ascii_lowercase()));
        }
        Some(match s {
            "host" => Field::Host,
            "path" => Field::Path,
            "http_method" => Field::HttpMethod,
            "request_body" => Field::RequestBody,
            "response_body" => Field::ResponseBody,
            "sse_data" => Field::SseData,
            "sse_event" => Field::SseEvent,
            "jsonrpc_method" => Field::JsonrpcMethod,
            "json_pointer" => Field::JsonPointer(String::new()),
            "analyzer_signal" => Field::AnalyzerSignal,
            "known_server" => Field::KnownServer,
            "known_endpoint" => Field::KnownEndpoint,
            "tls_sni" => Field::TlsSni,
            _ => return None,
        })
    }

    /// Large, attacker-sized fields: scanned through the per-field
    /// aho-corasick prefilter, so every condition on them needs an atom.
    pub fn is_body(&self) -> bool {
        matches!(
            self,
            Field::RequestBody | Field::ResponseBody | Field::SseData
        )
    }

    /// The field name as written in rule files.
    pub fn name(&self) -> String {
        match self {
            Field::Host => "host".into(),
            Field::Path => "path".into(),
            Field::HttpMethod => "http_method".into(),
            Field::RequestHeader(n) => format!("request_header.{n}"),
            Field::ResponseHeader(n) => format!("response_header.{n}"),
            Field::RequestBody => "request_body".into(),
            Field::ResponseBody => "response_body".into(),
            Field::SseData => "sse_data".into(),
            Field::SseEvent => "sse_event".into(),
            Field::JsonrpcMethod => "jsonrpc_method".into(),
            Field::JsonPointer(_) => "json_pointer".into(),
            Field::AnalyzerSignal => "analyzer_signal".into(),
            Field::KnownServer => "known_server".into(),
            Field::KnownEndpoint => "known_endpoint".into(),
            Field::TlsSni => "tls_sni".into(),
        }
    }
}

fn valid_header_name(name: &str) -> bool {
    // RFC 9110 token characters.
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// How a condition compares a field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The value equals one of the strings.
    Equals(Vec<String>),
    /// The value contains one of the strings.
    Contains(Vec<String>),
    /// The value starts with one of the strings.
    Prefix(Vec<String>),
    /// The value ends with one of the strings.
    Suffix(Vec<String>),
    /// The value matches the regular expression (Rust `regex` syntax, unanchored).
    Regex(String),
    /// The whole value matches the glob (`*` any run of characters, `?` one character).
    Glob(Vec<String>),
    /// `true`: the field has at least one value; `false`: it has none.
    Exists(bool),
}

impl Operator {
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Equals(_) => "equals",
            Operator::Contains(_) => "contains",
            Operator::Prefix(_) => "prefix",
            Operator::Suffix(_) => "suffix",
            Operator::Regex(_) => "regex",
            Operator::Glob(_) => "glob",
            Operator::Exists(_) => "exists",
        }
    }
}

/// One field test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub field: Field,
    pub op: Operator,
    /// Compare ignoring ASCII case.
    pub nocase: bool,
    /// Literals one of which must occur in the field for the matcher to
    /// match (ASCII-lower-cased). Filled for body fields only: from the
    /// rule's `atoms`, else the operator's literals, else extracted from the regex.
    pub atoms: Vec<String>,
    /// Line of the condition in its file.
    pub line: usize,
}

/// A condition tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Match(Matcher),
}

impl Condition {
    /// Every matcher in the tree, depth first.
    pub fn matchers(&self) -> Vec<&Matcher> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Matcher>) {
        match self {
            Condition::All(c) | Condition::Any(c) => c.iter().for_each(|c| c.collect(out)),
            Condition::Not(c) => c.collect(out),
            Condition::Match(m) => out.push(m),
        }
    }
}

/// Where a rule or catalog entry was defined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One detection rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable numeric id (like a Suricata `sid`); unique within a pack.
    pub id: u32,
    /// Revision, bumped when the rule's logic changes.
    pub rev: u32,
    pub name: String,
    pub description: String,
    pub confidence: Confidence,
    /// 1 (high) to 3 (low), as in Suricata.
    pub severity: u8,
    pub category: String,
    pub references: Vec<String>,
    /// Circumstantial rules (host, path, shared method names) are dropped
    /// when the exchange carries evidence that it is not MCP.
    pub circumstantial: bool,
    pub condition: Condition,
    pub location: SourceLocation,
}

/// One public remote MCP endpoint of the known-servers catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownServer {
    /// Hostname, lower-cased, without port.
    pub host: String,
    /// Endpoint path (`/` when the server answers at the root).
    pub path: String,
    pub vendor: String,
    /// `streamable-http`, `sse`, ... as the source states it (free text).
    pub transport: Option<String>,
    /// Where the endpoint was published.
    pub source: String,
    pub location: SourceLocation,
}

impl KnownServer {
    /// Whether a request path (query allowed) addresses this endpoint.
    pub fn matches_path(&self, request_path: &str) -> bool {
        let path = request_path
            .split(['?', '#'])
            .next()
            .unwrap_or(request_path);
        let want = self.path.trim_end_matches('/');
        let got = path.trim_end_matches('/');
        if want.is_empty() {
            return got.is_empty();
        }
        got.eq_ignore_ascii_case(want)
            || (got.len() > want.len()
                && got.is_char_boundary(want.len())
                && got[..want.len()].eq_ignore_ascii_case(want)
                && got.as_bytes().get(want.len()) == Some(&b'/'))
    }
}
