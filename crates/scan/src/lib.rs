//! From records to verdicts and alerts.
//!
//! A [`Scanner`] receives every [`Record`] a source produces, in order. For
//! each exchange it runs the [`Detector`]; an MCP exchange gets a
//! [`Decision`] from the [`Policy`] for the server it talks to and becomes an
//! [`Event`] holding a Suricata-EVE-compatible alert (see `docs/alerts.md`).
//!
//! Open SSE streams need state: an exchange flagged `streaming` is
//! remembered (head only, no bodies) so that the events arriving later as
//! [`SseUpdate`]s are inspected with its host, path and headers. An update
//! raises an alert only when it makes the stream's detection stronger (not
//! MCP → MCP, or a higher confidence), so a stream that never ends cannot
//! flood the SIEM. A stream whose only evidence is circumstantial (`low`:
//! a `/sse` path, an `mcp.` host) is held until its first events arrive: a
//! stock ticker on `/sse` is then seen not to be MCP and makes no alert,
//! while an MCP stream alerts with its events' evidence. The table of open
//! streams is capped.
//!
//! LLM-provider requests that name MCP servers (`mcp_servers[].url`,
//! `{"type":"mcp","server_url":…}`) give one alert per named server: the
//! policy judges the named server, not the provider's API host.

use std::collections::{HashMap, VecDeque};

/// Flow tables are keyed by addresses and ports an attacker chooses:
/// foldhash with a per-process random seed is several times cheaper than
/// SipHash and still keeps keys unpredictable.
type FlowHasher = foldhash::fast::RandomState;
use std::sync::Arc;

use shadowmcp_detect::{Confidence, Detection, Detector};
use shadowmcp_exchange::{Exchange, Record, SseUpdate};
use shadowmcp_policy::{Decision, Policy, ServerRef, Subject, Verdict};

pub mod eve;

/// What goes into alerts, and what is reported besides MCP.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Put tool-call arguments and bodies into alerts (they may hold
    /// secrets; off by default).
    pub include_payload: bool,
    /// Also emit an EVE `http` event for every exchange that is not MCP.
    pub all: bool,
    /// Open SSE streams remembered at once; the oldest is forgotten first.
    pub max_open_streams: usize,
    /// Bytes of a body copied into an alert with `include_payload`.
    pub max_payload: usize,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            include_payload: false,
            all: false,
            max_open_streams: 65_536,
            max_payload: 4096,
        }
    }
}

/// One output event.
#[derive(Clone, Debug)]
pub struct Event {
    /// `None` for `--all` events about non-MCP exchanges.
    pub verdict: Option<Verdict>,
    /// The rule that named the alert.
    pub signature_id: Option<u32>,
    /// Every rule that fired.
    pub rule_ids: Vec<u32>,
    /// Canonical `host[:port]/path` of the MCP server.
    pub server: Option<String>,
    /// The EVE JSON object.
    pub json: serde_json::Value,
}

/// Counters for the end-of-run summary and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub exchanges: u64,
    pub sse_updates: u64,
    /// Exchanges (or streams) found to be MCP.
    pub mcp_exchanges: u64,
    pub alerts: u64,
    pub allowed: u64,
    pub would_block: u64,
    pub blocked: u64,
    /// Updates whose stream was not known (forgotten, or never seen).
    pub orphan_updates: u64,
    pub streams_forgotten: u64,
}

impl ScanStats {
    /// Adds another scanner's counters (one scanner per worker thread).
    pub fn merge(&mut self, other: &ScanStats) {
        let ScanStats {
            exchanges,
            sse_updates,
            mcp_exchanges,
            alerts,
            allowed,
            would_block,
            blocked,
            orphan_updates,
            streams_forgotten,
        } = other;
        self.exchanges += exchanges;
        self.sse_updates += sse_updates;
        self.mcp_exchanges += mcp_exchanges;
        self.alerts += alerts;
        self.allowed += allowed;
        self.would_block += would_block;
        self.blocked += blocked;
        self.orphan_updates += orphan_updates;
        self.streams_forgotten += streams_forgotten;
    }
}

/// What an MCP session's handshake told, for the alerts of its later
/// exchanges (which carry only the session id).
#[derive(Clone, Default)]
struct SessionFacts {
    protocol_version: Option<String>,
    client: Option<shadowmcp_detect::Implementation>,
    server_info: Option<shadowmcp_detect::Implementation>,
}

/// Sessions remembered at once; the oldest is forgotten first.
const MAX_SESSIONS: usize = 65_536;

struct OpenStream {
    head: Exchange,
    detection: Detection,
    /// Confidence of the last alert raised for this stream.
    alerted: Option<Confidence>,
}

/// Runs detection and policy over records; see the crate docs.
pub struct Scanner {
    detector: Arc<Detector>,
    policy: Arc<Policy>,
    options: ScanOptions,
    open: HashMap<u64, OpenStream, FlowHasher>,
    open_order: VecDeque<u64>,
    sessions: HashMap<(String, String), SessionFacts>,
    session_order: VecDeque<(String, String)>,
    stats: ScanStats,
}

impl Scanner {
    pub fn new(detector: Arc<Detector>, policy: Arc<Policy>, options: ScanOptions) -> Scanner {
        Scanner {
            detector,
            policy,
            options,
            open: HashMap::default(),
            open_order: VecDeque::new(),
            sessions: HashMap::new(),
            session_order: VecDeque::new(),
            stats: ScanStats::default(),
        }
    }

    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// Inspects one record; events are appended to `out`.
    pub fn on_record(&mut self, record: &Record, out: &mut Vec<Event>) {
        match record {
            Record::Exchange(ex) => self.on_exchange(ex, out),
            Record::SseUpdate(up) => self.on_update(up, out),
        }
    }

    fn on_exchange(&mut self, ex: &Exchange, out: &mut Vec<Event>) {
        self.stats.exchanges += 1;
        let detection = self.detector.inspect(ex);
        // Circumstantial evidence on an open stream waits for its events.
        let hold = ex.flags.streaming && detection.confidence == Some(Confidence::Low);
        let mut alerted = None;
        if detection.is_mcp() && !hold {
            self.stats.mcp_exchanges += 1;
            self.alert(ex, &detection, None, out);
            alerted = detection.confidence;
        } else if self.options.all && !hold {
            out.push(Event {
                verdict: None,
                signature_id: None,
                rule_ids: Vec::new(),
                server: None,
                json: eve::http_event(ex),
            });
        }
        if ex.flags.streaming {
            self.remember(ex, detection, alerted);
        }
    }

    fn on_update(&mut self, up: &SseUpdate, out: &mut Vec<Event>) {
        self.stats.sse_updates += 1;
        let Some(stream) = self.open.get_mut(&up.exchange_id) else {
            self.stats.orphan_updates += 1;
            return;
        };
        stream.head.flags.merge(up.flags);
        let inspected = !up.events.is_empty();
        if inspected {
            let new = self.detector.inspect_sse(&stream.head, &up.events);
            stream.detection.merge(new);
        }
        // Alert when the stream's events strengthened the detection, or when
        // a held stream ends without ever showing events.
        let confidence = stream.detection.confidence;
        if confidence > stream.alerted && (inspected || up.end) {
            if stream.alerted.is_none() {
                self.stats.mcp_exchanges += 1;
            }
            stream.alerted = confidence;
            let head = stream.head.clone();
            let detection = stream.detection.clone();
            self.alert(&head, &detection, Some(up), out);
        }
        if up.end {
            self.open.remove(&up.exchange_id);
        }
    }

    fn remember(&mut self, ex: &Exchange, detection: Detection, alerted: Option<Confidence>) {
        while self.open.len() >= self.options.max_open_streams.max(1) {
            match self.open_order.pop_front() {
                Some(id) => {
                    if self.open.remove(&id).is_some() {
                        self.stats.streams_forgotten += 1;
                    }
                }
                None => break,
            }
        }
        // Bodies are not needed to inspect later events; the head is.
        let mut head = ex.clone();
        if let Some(r) = head.request.as_mut() {
            r.body.data = Vec::new();
        }
        if let Some(r) = head.response.as_mut() {
            r.body.data = Vec::new();
            r.sse_events = Vec::new();
        }
        self.open.insert(
            ex.id,
            OpenStream {
                head,
                detection,
                alerted,
            },
        );
        self.open_order.push_back(ex.id);
        if self.open_order.len() > self.open.len() * 2 + 16 {
            let open = &self.open;
            self.open_order.retain(|id| open.contains_key(id));
        }
    }

    /// Fills the client, server and version of a session's later exchanges
    /// from its handshake, and remembers them from the handshake.
    fn session_facts(&mut self, ex: &Exchange, detection: &Detection) -> Detection {
        let mut d = detection.clone();
        let Some(session) = d.session_id.clone() else {
            return d;
        };
        let key = (ex.host().unwrap_or_default().to_ascii_lowercase(), session);
        let known = self.sessions.get(&key).cloned().unwrap_or_default();
        d.protocol_version = d.protocol_version.or(known.protocol_version);
        d.client = d.client.or(known.client);
        d.server_info = d.server_info.or(known.server_info);
        let facts = SessionFacts {
            protocol_version: d.protocol_version.clone(),
            client: d.client.clone(),
            server_info: d.server_info.clone(),
        };
        if facts.protocol_version.is_some() || facts.client.is_some() || facts.server_info.is_some()
        {
            if !self.sessions.contains_key(&key) {
                if self.sessions.len() >= MAX_SESSIONS {
                    if let Some(old) = self.session_order.pop_front() {
                        self.sessions.remove(&old);
                    }
                }
                self.session_order.push_back(key.clone());
            }
            self.sessions.insert(key, facts);
        }
        d
    }

    fn alert(
        &mut self,
        ex: &Exchange,
        detection: &Detection,
        update: Option<&SseUpdate>,
        out: &mut Vec<Event>,
    ) {
        let detection = &self.session_facts(ex, detection);
        let subject = Subject {
            user: ex.user.as_deref(),
            client_ip: ex.client_addr(),
        };
        let provider_servers: Vec<ServerRef> = detection
            .provider_mcp_servers
            .iter()
            .filter_map(|u| ServerRef::from_url(u))
            .collect();
        let targets: Vec<(ServerRef, bool)> = if provider_servers.is_empty() {
            let host = ex
                .host()
                .map(str::to_string)
                .or_else(|| ex.flow.as_ref().map(|f| f.server.to_string()))
                .unwrap_or_default();
            vec![(ServerRef::new(&host, ex.path().unwrap_or("/")), false)]
        } else {
            provider_servers.into_iter().map(|s| (s, true)).collect()
        };
        for (server, via_provider) in targets {
            let decision: Decision = self.policy.decide(&server, &subject);
            self.stats.alerts += 1;
            match decision.verdict {
                Verdict::Allow => self.stats.allowed += 1,
                Verdict::WouldBlock => self.stats.would_block += 1,
                Verdict::Block => self.stats.blocked += 1,
            }
            let json = eve::alert_event(&eve::AlertContext {
                exchange: ex,
                detection,
                decision: &decision,
                server: &server,
                via_provider,
                update,
                groups: subject
                    .user
                    .map(|u| self.policy.groups_of(u))
                    .unwrap_or_default(),
                options: &self.options,
            });
            out.push(Event {
                verdict: Some(decision.verdict),
                signature_id: detection.strongest().map(|m| m.id),
                rule_ids: detection.matches.iter().map(|m| m.id).collect(),
                server: Some(server.canonical()),
                json,
            });
        }
    }
}
