//! shadowmcp detector: this crate's one job is to decide, for one HTTP
//! exchange (or a batch of server-sent events of an open stream), whether it
//! is MCP traffic, how surely, and which rules say so.
//!
//! A [`Detector`] is built once from a [`RulePack`] (see `shadowmcp-rules`
//! and `docs/rules.md`) and shared by worker threads (`Send + Sync`).
//!
//! How an exchange is inspected:
//! 1. Every body field (request body, response body, SSE data) is scanned
//!    once by one aho-corasick automaton holding the literal atoms of all
//!    rules on that field, up to [`DetectConfig::max_body_scan`] bytes.
//! 2. Bodies that look like JSON (JSON content type, or starting with `{`/`[`,
//!    or containing `jsonrpc`) and every SSE event are analysed by
//!    `shadowmcp-jsonrpc`, which parses them: escapes, whitespace and key
//!    order cannot hide a method.
//! 3. Each rule's condition tree is evaluated; a regex only runs on a body
//!    when one of its atoms was seen there.
//! 4. Confidence is combined as documented in `docs/rules.md` ("How
//!    confidence is decided"): circumstantial rules (host, path, shared
//!    method names) yield to evidence that the exchange is not MCP.
//!
//! Time is linear in the scanned bytes (aho-corasick and the `regex` crate
//! are linear; no test rescans a body more than once per rule).
//!
//! ```
//! use shadowmcp_detect::{Confidence, DetectConfig, Detector};
//! use shadowmcp_exchange::{Body, Exchange, Headers, HttpVersion, Request};
//! use shadowmcp_rules::RulePack;
//!
//! let detector = Detector::new(&RulePack::default_pack(), DetectConfig::default()).unwrap();
//!
//! let mut headers = Headers::default();
//! headers.push("Host", "tools.internal.example");
//! headers.push("Content-Type", "application/json");
//! let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"read_file"}}"#;
//! let mut ex = Exchange::new(1);
//! ex.request = Some(Request {
//!     method: "POST".into(),
//!     target: "/api/assistant".into(),
//!     version: HttpVersion::Http11,
//!     headers,
//!     body: Body { data: body.to_vec(), ..Body::default() },
//!     trailers: Headers::default(),
//! });
//! let d = detector.inspect(&ex);
//! assert!(d.is_mcp());
//! assert_eq!(d.confidence, Some(Confidence::High));
//! assert_eq!(d.methods, ["tools/call"]);
//! assert_eq!(d.tools_called[0].name, "read_file");
//! assert_eq!(d.transport, Some("streamable-http"));
//! ```

mod compile;
mod eval;

pub use compile::BuildError;
pub use shadowmcp_jsonrpc::{Implementation, Limits as JsonRpcLimits, ToolCall};
pub use shadowmcp_rules::{Confidence, RulePack};

use shadowmcp_exchange::{Exchange, SseEvent};

/// Caps and knobs of a [`Detector`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectConfig {
    /// Bytes of each body (and in total of the SSE data of one call) that
    /// the prefilter and regexes look at. Default 1 MiB.
    pub max_body_scan: usize,
    /// Bytes of each header value and of the path that rules look at.
    /// Default 8 KiB.
    pub max_header_scan: usize,
    /// SSE events inspected per call; later ones are skipped and
    /// [`Detection::scan_truncated`] is set. Default 1024.
    pub max_sse_events: usize,
    /// Largest payload parsed into a JSON tree for `json_pointer`
    /// conditions (the analyzer itself does not need the tree).
    /// Default 256 KiB.
    pub max_json_pointer_bytes: usize,
    /// Bodies up to this size that look like JSON are always parsed by the
    /// analyzer (for near-miss explanations). Larger ones are parsed only
    /// when the prefilter saw `jsonrpc`, `mcp` or a `\u` escape in them (or
    /// they exceed `max_body_scan`): without those an MCP message cannot be
    /// in them, and parsing large JSON is the detector's costliest step.
    /// Default 64 KiB.
    pub always_analyze_below: usize,
    /// Body rules see only bodies that could carry MCP: bodies that look
    /// like JSON, event streams, and others that contain the literal
    /// `jsonrpc` or a `\u` escape. Other bodies (pages, scripts,
    /// downloads) are skipped after two fast substring searches. Turn off
    /// for custom rules that match arbitrary body text. Default on.
    pub skip_non_jsonrpc_bodies: bool,
    /// Limits handed to `shadowmcp_jsonrpc::analyze`.
    pub jsonrpc_limits: JsonRpcLimits,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            max_body_scan: 1 << 20,
            max_header_scan: 8 << 10,
            max_sse_events: 1024,
            max_json_pointer_bytes: 256 << 10,
            always_analyze_below: 64 << 10,
            skip_non_jsonrpc_bodies: true,
            jsonrpc_limits: JsonRpcLimits::default(),
        }
    }
}

/// One rule that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    pub id: u32,
    pub name: String,
    pub category: String,
    /// 1 (high) .. 3 (low).
    pub severity: u8,
    pub confidence: Confidence,
    /// The rule yields to counter-evidence (see `docs/rules.md`).
    pub circumstantial: bool,
}

/// Transports a [`Detection`] can name.
pub mod transport {
    pub const STREAMABLE_HTTP: &str = "streamable-http";
    pub const LEGACY_SSE: &str = "legacy-sse";
    pub const WEBSOCKET: &str = "websocket";
    pub const PROVIDER: &str = "provider";
    pub const UNKNOWN: &str = "unknown";
}

/// Entries kept per list when detections are merged over a long stream.
pub const MAX_LIST: usize = 1000;

/// What the detector concluded about one exchange (or SSE batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detection {
    /// Rules that matched and count, strongest first.
    pub matches: Vec<RuleMatch>,
    /// Rules that matched but were dropped because the exchange showed it is
    /// not MCP ([`Detection::counter_evidence`] says why).
    pub suppressed: Vec<RuleMatch>,
    /// `None`: not MCP.
    pub confidence: Option<Confidence>,
    /// Category of the strongest match.
    pub category: Option<String>,
    /// JSON-RPC methods seen (any protocol), first-seen order.
    pub methods: Vec<String>,
    /// From the JSON body (`initialize`, `_meta`) or the MCP-Protocol-Version header.
    pub protocol_version: Option<String>,
    /// From `Mcp-Session-Id`, or the legacy endpoint event / message URL.
    pub session_id: Option<String>,
    pub client: Option<Implementation>,
    pub server_info: Option<Implementation>,
    pub tools_called: Vec<ToolCall>,
    /// MCP server URLs handed to an LLM provider.
    pub provider_mcp_servers: Vec<String>,
    /// `streamable-http`, `legacy-sse`, `websocket`, `provider` or `unknown`
    /// (see [`transport`]); `None` when not MCP.
    pub transport: Option<&'static str>,
    /// Analyzer signal names (shadowmcp-jsonrpc `Signal::as_str`).
    pub signals: Vec<&'static str>,
    /// Why circumstantial rules were dropped, e.g. `near_miss_lsp`,
    /// `non_mcp_payload`, `non_json_response`.
    pub counter_evidence: Option<&'static str>,
    /// A scan cap cut some field short.
    pub scan_truncated: bool,
}

impl Detection {
    pub fn is_mcp(&self) -> bool {
        self.confidence.is_some()
    }

    /// The match that decides the category: highest confidence, then
    /// lowest severity number, then lowest id.
    pub fn strongest(&self) -> Option<&RuleMatch> {
        self.matches.iter().min_by(|a, b| rank(a).cmp(&rank(b)))
    }

    /// Folds a later detection of the same exchange (e.g. of its SSE
    /// updates) into this one: matches united by id, confidence the maximum,
    /// lists united (capped at [`MAX_LIST`]), first-known scalars kept.
    ///
    /// Counter-evidence found later (a `/sse` stream whose events turn out
    /// not to be MCP) suppresses the circumstantial matches found earlier,
    /// unless some non-circumstantial rule matched.
    pub fn merge(&mut self, other: Detection) {
        for m in other.matches {
            if !self.matches.iter().any(|x| x.id == m.id) {
                self.suppressed.retain(|x| x.id != m.id);
                self.matches.push(m);
            }
        }
        for m in other.suppressed {
            let known = self
                .matches
                .iter()
                .chain(&self.suppressed)
                .any(|x| x.id == m.id);
            if !known {
                self.suppressed.push(m);
            }
        }
        self.matches.sort_by_key(rank);
        self.confidence = self.confidence.max(other.confidence);
        self.counter_evidence = self.counter_evidence.or(other.counter_evidence);
        if self.counter_evidence.is_some() && self.matches.iter().all(|m| m.circumstantial) {
            self.suppressed.append(&mut self.matches);
            self.confidence = None;
        }
        self.category = self.strongest().map(|m| m.category.clone());
        for m in other.methods {
            push_unique(&mut self.methods, m);
        }
        self.protocol_version = self.protocol_version.take().or(other.protocol_version);
        self.session_id = self.session_id.take().or(other.session_id);
        self.client = self.client.take().or(other.client);
        self.server_info = self.server_info.take().or(other.server_info);
        for t in other.tools_called {
            if self.tools_called.len() < MAX_LIST {
                self.tools_called.push(t);
            }
        }
        for u in other.provider_mcp_servers {
            push_unique(&mut self.provider_mcp_servers, u);
        }
        for s in other.signals {
            push_unique(&mut self.signals, s);
        }
        self.transport = match (self.transport, other.transport) {
            (Some(t), _) if t != transport::UNKNOWN => Some(t),
            (mine, None) => mine,
            (_, theirs) => theirs,
        };
        if !self.is_mcp() {
            self.transport = None;
        }
        self.scan_truncated |= other.scan_truncated;
    }
}

fn rank(m: &RuleMatch) -> (std::cmp::Reverse<Confidence>, u8, u32) {
    (std::cmp::Reverse(m.confidence), m.severity, m.id)
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_LIST && !list.contains(&item) {
        list.push(item);
    }
}

/// The compiled rule pack; build once, share across threads.
pub struct Detector {
    compiled: compile::Compiled,
    config: DetectConfig,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.compiled.rules.len())
            .field(
                "atoms",
                &self
                    .compiled
                    .prefilters
                    .iter()
                    .map(|p| p.atoms.len())
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

impl Detector {
    /// Compiles `pack`. Fails on a rule naming an unknown analyzer signal
    /// (or, for packs not built by `shadowmcp-rules`' loader, a body
    /// condition without atoms or a regex over the size limit).
    pub fn new(pack: &RulePack, config: DetectConfig) -> Result<Detector, BuildError> {
        Ok(Detector {
            compiled: compile::compile(pack)?,
            config,
        })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Inspects a whole exchange: request, response and the SSE events
    /// parsed so far (`response.sse_events`).
    pub fn inspect(&self, ex: &Exchange) -> Detection {
        let events = ex
            .response
            .as_ref()
            .map(|r| r.sse_events.as_slice())
            .unwrap_or(&[]);
        eval::inspect(self, ex, events, true)
    }

    /// Inspects SSE events of an open stream that arrived after its exchange
    /// was inspected (`SseUpdate::events`). `ex` gives the context (host,
    /// path, headers); its bodies and earlier events are not looked at
    /// again. Merge the result into the exchange's detection with
    /// [`Detection::merge`].
    pub fn inspect_sse(&self, ex: &Exchange, events: &[SseEvent]) -> Detection {
        eval::inspect(self, ex, events, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detector>();
    }

    fn m(id: u32, c: Confidence, sev: u8) -> RuleMatch {
        RuleMatch {
            id,
            name: format!("r{id}"),
            category: format!("c{id}"),
            severity: sev,
            confidence: c,
            circumstantial: c == Confidence::Low,
        }
    }

    #[test]
    fn strongest_orders_by_confidence_severity_id() {
        let d = Detection {
            matches: vec![
                m(5, Confidence::Medium, 1),
                m(3, Confidence::High, 2),
                m(2, Confidence::High, 2),
                m(1, Confidence::High, 3),
            ],
            ..Detection::default()
        };
        assert_eq!(d.strongest().map(|m| m.id), Some(2));
    }

    #[test]
    fn merge_unites_and_keeps_first_scalars() {
        let mut a = Detection {
            matches: vec![m(1, Confidence::Low, 3)],
            suppressed: vec![m(7, Confidence::Low, 3)],
            confidence: Some(Confidence::Low),
            category: Some("c1".into()),
            methods: vec!["initialize".into()],
            session_id: Some("s1".into()),
            transport: Some(transport::UNKNOWN),
            ..Detection::default()
        };
        let b = Detection {
            matches: vec![
                m(1, Confidence::Low, 3),
                m(7, Confidence::Low, 3),
                m(9, Confidence::High, 1),
            ],
            confidence: Some(Confidence::High),
            methods: vec!["initialize".into(), "tools/list".into()],
            session_id: Some("s2".into()),
            protocol_version: Some("2025-06-18".into()),
            transport: Some(transport::LEGACY_SSE),
            ..Detection::default()
        };
        a.merge(b);
        let ids: Vec<u32> = a.matches.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![9, 1, 7]);
        assert!(a.suppressed.is_empty());
        assert_eq!(a.confidence, Some(Confidence::High));
        assert_eq!(a.category.as_deref(), Some("c9"));
        assert_eq!(a.methods, ["initialize", "tools/list"]);
        assert_eq!(a.session_id.as_deref(), Some("s1"));
        assert_eq!(a.protocol_version.as_deref(), Some("2025-06-18"));
        assert_eq!(a.transport, Some(transport::LEGACY_SSE));
    }

    #[test]
    fn later_counter_evidence_suppresses_earlier_circumstantial_matches() {
        let mut head = Detection {
            matches: vec![m(1011, Confidence::Low, 3)],
            confidence: Some(Confidence::Low),
            category: Some("c1011".into()),
            transport: Some(transport::UNKNOWN),
            ..Detection::default()
        };
        let mut strong = head.clone();
        let update = Detection {
            suppressed: vec![m(1011, Confidence::Low, 3)],
            counter_evidence: Some("non_mcp_payload"),
            ..Detection::default()
        };
        head.merge(update.clone());
        assert!(!head.is_mcp());
        assert_eq!(head.category, None);
        assert_eq!(head.transport, None);
        assert_eq!(head.suppressed.len(), 1);
        // A non-circumstantial match keeps everything.
        strong.matches.push(m(2001, Confidence::High, 2));
        strong.confidence = Some(Confidence::High);
        strong.merge(update);
        assert_eq!(strong.confidence, Some(Confidence::High));
        assert_eq!(strong.matches.len(), 2);
    }

    #[test]
    fn merge_of_two_non_mcp_stays_non_mcp() {
        let mut a = Detection::default();
        a.merge(Detection {
            suppressed: vec![m(1, Confidence::Low, 3)],
            counter_evidence: Some("non_mcp_payload"),
            ..Detection::default()
        });
        assert!(!a.is_mcp());
        assert_eq!(a.transport, None);
        assert_eq!(a.suppressed.len(), 1);
    }
}
