//! Structural analysis of HTTP bodies: is this MCP (Model Context Protocol),
//! another JSON-RPC protocol that merely looks like it, an LLM tool-calling
//! API, or none of these?
//!
//! The crate's one job is [`analyze`]: it parses a body (one JSON-RPC
//! message, a batch, NDJSON, an SSE stream, or any JSON) with serde_json and
//! reports the messages, how sure it is that the payload is MCP
//! ([`Evidence`]), and why ([`Signal`]s, with stable snake_case names that
//! rules can refer to). [`merge`] combines the analyses of a request, its
//! response and later SSE events.
//!
//! Because the body is parsed, key order, whitespace and JSON escapes do not
//! matter: `{"params":{…10 KiB…},"m\u0065thod" :  "tools\/call","jsonrpc":"2.0"}`
//! is `tools/call`. (Cloudflare's DLP regexes only scan the first 1,024 bytes
//! and literal text; mcp-facts.md §a.8.)
//!
//! ```
//! use shadowmcp_jsonrpc::{analyze, Evidence, Limits, Signal};
//!
//! let body = br#"{"params":{"arguments":{"path":"/etc/passwd"},"name":"read_file"},
//!                 "m\u0065thod":"tools\/call","id":7,"jsonrpc":"2.0"}"#;
//! let a = analyze(body, &Limits::default());
//! assert_eq!(a.evidence, Evidence::Strong);
//! assert!(a.signals.contains(&Signal::McpMethod));
//! assert_eq!(a.methods, ["tools/call"]);
//! assert_eq!(a.tools_called[0].name, "read_file");
//!
//! // LSP's initialize is not MCP.
//! let lsp = br#"{"jsonrpc":"2.0","id":0,"method":"initialize",
//!                "params":{"processId":42,"rootUri":"file:///src","capabilities":{}}}"#;
//! let a = analyze(lsp, &Limits::default());
//! assert_eq!(a.evidence, Evidence::None);
//! assert_eq!(a.signals, [Signal::NearMissLsp]);
//! ```
//!
//! # Classification rules
//!
//! Facts and sources are in `/work/shared/reference/mcp-facts.md` (section
//! numbers below). Each message is classified on its own; the payload's
//! evidence is the strongest of its messages and non-JSON-RPC shapes.
//!
//! | Evidence | Rule | Signal | Source |
//! |---|---|---|---|
//! | Strong | method only MCP defines (table [`MCP_METHODS`], per era) | `mcp_method` | §c.1, §c.5 (schema.ts of each era) |
//! | Strong | `initialize` with string `params.protocolVersion` and object `params.clientInfo` | `initialize_params` | §c.2 |
//! | Strong | result with string `protocolVersion` and object `serverInfo` | `initialize_result` | §c.2 |
//! | Strong | result with `supportedVersions[]` and `capabilities` (`server/discover`) | `discover_result` | §c.3 |
//! | Strong | result `tools[]` items with `name` and object `inputSchema` | `tools_list_result` | §c.4 |
//! | Strong | `tools/call` with string `params.name` (name and arguments extracted) | `tool_call` | §c.4 |
//! | Strong | result `content[]` of typed items with boolean `isError` or `structuredContent` | `tool_result` | §c.4 |
//! | Strong | result `resources[]` (`uri`+`name`), `resourceTemplates[]` (`uriTemplate`) or `contents[]` (`uri`+`text`/`blob`) | `resources_result` | schema.ts |
//! | Strong | result `prompts[]` (`name`) or `messages[]` of `{role, content:{type}}` | `prompts_result` | schema.ts |
//! | Strong | result `{model, role, content{type}}` (sampling), `{action: accept\|decline\|cancel, content?}` (elicitation), `roots[]` with `file://` URIs: a client's answer to a server request, POSTed on its own | `client_result` | schema.ts |
//! | Strong | result `completion.values[]` | `completion_result` | schema.ts |
//! | Strong | `tasks/*` with `params.taskId`, or a result with `taskId` + MCP task status, `task.taskId` or `tasks[].taskId` | `mcp_task` | §c.1 (2025-11-25) |
//! | Strong | result `resultType:"input_required"` with `inputRequests` (2026 MRTR) | `input_required_result` | §b.5 |
//! | Strong | `params._meta` / `result._meta` key starting `io.modelcontextprotocol/` | `mcp_meta_keys` | §c.3 |
//! | Strong | error `data` with `supported` and `requested` (unsupported protocol version) | `mcp_version_error` | §c.2, §b.5 |
//! | Strong | SSE `event: endpoint` whose data has `sessionId=`/`session_id=` | `sse_endpoint` | §b.1 |
//! | Strong | LLM API request naming MCP servers: Anthropic `mcp_servers[].url`, OpenAI Responses `tools[]` `{"type":"mcp","server_url"\|"connector_id"\|"tunnel_id"}`, Anthropic `mcp_toolset` (not JSON-RPC; also inside a streamed `response`) | `provider_mcp_server` | §d.7; developers.openai.com/api/docs/guides/tools-remote-mcp |
//! | Strong | LLM API content blocks `mcp_tool_use`/`mcp_tool_result`, OpenAI output items `mcp_call`/`mcp_list_tools`/`mcp_approval_request` (also as streamed `item`/`content_block`), stream events `response.mcp_*` | `provider_mcp_activity` | §d.7; same OpenAI guide |
//! | Weak | `ping`, `notifications/cancelled`, `notifications/progress`; `initialize` without MCP or near-miss params; `tasks/get\|list\|cancel` without `taskId`/`id` | `ambiguous_method` | §c.5 "Weak/shared" |
//! | Weak | result `content[]` of typed items without `isError`/`structuredContent` | `content_result` | §c.4 |
//! | Weak | error codes -32002, -32042, -32020, -32021, -32022 (-32002 is also EIP-1474's "resource unavailable") | `mcp_error` | §c.1 |
//! | (cap) | any MCP-positive message not framed `"jsonrpc":"2.0"` is capped at Weak (MCP SDKs reject other framings) | `non_standard_framing` | §d.11 |
//! | None | LSP: `initialize` with `processId`/`rootUri`/`rootPath`/`workspaceFolders`; result `capabilities.*Provider`/`textDocumentSync`; `textDocument/*`, `workspace/*`, `$/*`, `initialized`, … | `near_miss_lsp` | §d.3 |
//! | None | ACP: `initialize` with integer `protocolVersion` or `clientCapabilities`; result with `agentInfo`/`agentCapabilities`/`authMethods`/integer `protocolVersion`; `session/*`, `fs/*`, `terminal/*` | `near_miss_acp` | §d.5 |
//! | None | A2A: `message/send`, `message/stream`, `tasks/resubscribe`, `tasks/get\|cancel\|list` with `params.id` (no `taskId`), v1.0 `SendMessage`…; results `kind:"task"\|"message"`; Agent Card (`skills` + `defaultInputModes`/`capabilities`) | `near_miss_a2a` | §d.4 |
//! | None | Ethereum `eth_*`, `net_*`, `web3_*`, … | `near_miss_ethereum` | §d.1 |
//! | None | Bitcoin Core method names (`getblockchaininfo`, …), whatever the framing | `near_miss_bitcoin` | §d.2 |
//! | None | LLM tool calling: `tools[]` of `type:"function"`, `input_schema`, `functionDeclarations`; `tool_calls` (also in a stream `delta`), `tool_use`, `function_call`, `functionCall` in responses | `near_miss_llm_tool_calling` | §d.6 |
//! | None | any other JSON-RPC message | `jsonrpc_other` | §d.8–d.11 |
//! | None | the body was not valid JSON; what is reported was recovered from it | `recovered_parse` | — |
//!
//! MCP-positive evidence wins over near-miss markers in the same message:
//! MCP servers ignore unknown keys, so adding `"processId":1` to an MCP
//! `initialize` must not hide it (the near-miss signal is still reported).
//! A near-miss signal alone never raises evidence.
//!
//! # Robustness
//!
//! * At most [`Limits::max_bytes`] bytes are read ([`Analysis::truncated`]
//!   says when the body was longer); a UTF-8 BOM and surrounding whitespace
//!   are skipped.
//! * serde_json parses first. If it fails (body cut by a capture cap, invalid
//!   UTF-8 inside a string, nesting beyond the limit), a tolerant,
//!   non-recursive parser rebuilds every complete member before the failure,
//!   replaces too-deep subtrees by `null` and reports [`Signal::RecoveredParse`]
//!   plus the first parse error in [`Analysis::error`]. So a body truncated
//!   after `"method":"tools/call",` still yields `tools/call`, and a cut
//!   method name (`"tools/ca`) yields nothing rather than a guess.
//! * Depth never exceeds `min(max_depth, 128)` (serde_json's own limit: it
//!   accepts 127 levels, the 128th goes through recovery); the 10,000-`[`
//!   case is handled without recursion.
//! * Every list in [`Analysis`] holds at most [`Limits::max_messages`] entries,
//!   also after [`merge`]; extra batch elements are counted in
//!   [`Analysis::skipped`]. Names are cut to 512 bytes, URLs to 2,048.
//! * Linear time: every array is walked once, no deep search.

mod classify;
mod methods;
mod parse;
mod sse;

pub use methods::{
    era, lookup_method, near_miss_method, MethodClass, MethodInfo, NearMiss, MCP_METHODS,
};
pub use sse::analyze_sse_event;

use serde_json::Value;

/// Caps on what [`analyze`] reads and keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Parse at most this many bytes of a body (default 4 MiB).
    pub max_bytes: usize,
    /// Maximum container nesting (default 128; values above 128 act as 128,
    /// serde_json's own limit). Deeper subtrees are replaced by `null`.
    pub max_depth: usize,
    /// Maximum messages per batch/body, and entries per list in
    /// [`Analysis`] (default 1000).
    pub max_messages: usize,
}

impl Limits {
    pub const DEFAULT_MAX_BYTES: usize = 4 << 20;
    pub const DEFAULT_MAX_DEPTH: usize = 128;
    pub const DEFAULT_MAX_MESSAGES: usize = 1000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_messages: Self::DEFAULT_MAX_MESSAGES,
        }
    }
}

/// What the body is, syntactically. Ordered: `NotJson < Json < JsonRpc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PayloadKind {
    #[default]
    NotJson,
    /// Valid JSON, but no JSON-RPC message in it.
    Json,
    /// At least one JSON-RPC message.
    JsonRpc,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::NotJson => "not_json",
            PayloadKind::Json => "json",
            PayloadKind::JsonRpc => "jsonrpc",
        }
    }
}

/// The JSON-RPC role of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `method` and `id`.
    Request,
    /// `method`, no `id` (or `"id":null` under JSON-RPC 1.0).
    Notification,
    /// `result` and `id`.
    Response,
    /// `error` and `id`.
    Error,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Request => "request",
            Role::Notification => "notification",
            Role::Response => "response",
            Role::Error => "error",
        }
    }
}

/// A JSON-RPC id. Numbers keep serde_json's representation (integers beyond
/// `u64`/`i64` become floats; they never fail).
#[derive(Clone, Debug, PartialEq)]
pub enum Id {
    Number(serde_json::Number),
    /// Cut to 512 bytes.
    String(String),
    Null,
}

/// One JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    /// Cut to 512 bytes.
    pub method: Option<String>,
    /// `None` when absent or not a string/number/null.
    pub id: Option<Id>,
}

/// How sure we are that the payload is MCP. Ordered: `None < Weak < Strong`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    #[default]
    None,
    Weak,
    Strong,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::None => "none",
            Evidence::Weak => "weak",
            Evidence::Strong => "strong",
        }
    }
}

/// Why the analysis concluded what it did. [`Analysis::signals`] is sorted in
/// declaration order; [`Signal::as_str`] names are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// A method name only MCP defines.
    McpMethod,
    /// `initialize` params with a string `protocolVersion` and `clientInfo`.
    InitializeParams,
    /// Result with `protocolVersion` and `serverInfo`.
    InitializeResult,
    /// `server/discover` result (2026-07-28).
    DiscoverResult,
    /// Result `tools[]` whose items have `inputSchema`.
    ToolsListResult,
    /// `tools/call` with a tool name.
    ToolCall,
    /// Result `content[]` plus `isError`/`structuredContent`.
    ToolResult,
    /// `resources/list|read|templates/list` result shapes.
    ResourcesResult,
    /// `prompts/list|get` result shapes.
    PromptsResult,
    /// Result of a server→client request (sampling, elicitation, roots),
    /// which the client POSTs on Streamable HTTP.
    ClientResult,
    /// `completion/complete` result.
    CompletionResult,
    /// MCP task shapes (`taskId`).
    McpTask,
    /// 2026-07-28 `input_required` result.
    InputRequired,
    /// `_meta` keys `io.modelcontextprotocol/*`.
    McpMetaKeys,
    /// Unsupported-protocol-version error with `data.supported`/`requested`.
    McpVersionError,
    /// HTTP+SSE (2024-11-05) `endpoint` event with a session id.
    SseEndpoint,
    /// MCP server declared to an LLM provider (provider-side MCP).
    ProviderMcpServer,
    /// Provider-side MCP tool use or listing in an LLM API body.
    ProviderMcpActivity,
    /// A method MCP shares with other protocols.
    AmbiguousMethod,
    /// Tool-result-like `content[]` without MCP's `isError`.
    ContentResult,
    /// An error code MCP defines (shared with others).
    McpError,
    /// MCP-positive message not framed `"jsonrpc":"2.0"`; capped at Weak.
    NonStandardFraming,
    NearMissLsp,
    NearMissAcp,
    NearMissA2a,
    NearMissEthereum,
    NearMissBitcoin,
    NearMissLlmToolCalling,
    /// A JSON-RPC message of no recognised protocol.
    JsonRpcOther,
    /// The body was not valid JSON; the analysis used what could be recovered.
    RecoveredParse,
}

impl Signal {
    /// Every signal, in output order.
    pub const ALL: [Signal; 30] = [
        Signal::McpMethod,
        Signal::InitializeParams,
        Signal::InitializeResult,
        Signal::DiscoverResult,
        Signal::ToolsListResult,
        Signal::ToolCall,
        Signal::ToolResult,
        Signal::ResourcesResult,
        Signal::PromptsResult,
        Signal::ClientResult,
        Signal::CompletionResult,
        Signal::McpTask,
        Signal::InputRequired,
        Signal::McpMetaKeys,
        Signal::McpVersionError,
        Signal::SseEndpoint,
        Signal::ProviderMcpServer,
        Signal::ProviderMcpActivity,
        Signal::AmbiguousMethod,
        Signal::ContentResult,
        Signal::McpError,
        Signal::NonStandardFraming,
        Signal::NearMissLsp,
        Signal::NearMissAcp,
        Signal::NearMissA2a,
        Signal::NearMissEthereum,
        Signal::NearMissBitcoin,
        Signal::NearMissLlmToolCalling,
        Signal::JsonRpcOther,
        Signal::RecoveredParse,
    ];

    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Signal::McpMethod => "mcp_method",
            Signal::InitializeParams => "initialize_params",
            Signal::InitializeResult => "initialize_result",
            Signal::DiscoverResult => "discover_result",
            Signal::ToolsListResult => "tools_list_result",
            Signal::ToolCall => "tool_call",
            Signal::ToolResult => "tool_result",
            Signal::ResourcesResult => "resources_result",
            Signal::PromptsResult => "prompts_result",
            Signal::ClientResult => "client_result",
            Signal::CompletionResult => "completion_result",
            Signal::McpTask => "mcp_task",
            Signal::InputRequired => "input_required_result",
            Signal::McpMetaKeys => "mcp_meta_keys",
            Signal::McpVersionError => "mcp_version_error",
            Signal::SseEndpoint => "sse_endpoint",
            Signal::ProviderMcpServer => "provider_mcp_server",
            Signal::ProviderMcpActivity => "provider_mcp_activity",
            Signal::AmbiguousMethod => "ambiguous_method",
            Signal::ContentResult => "content_result",
            Signal::McpError => "mcp_error",
            Signal::NonStandardFraming => "non_standard_framing",
            Signal::NearMissLsp => "near_miss_lsp",
            Signal::NearMissAcp => "near_miss_acp",
            Signal::NearMissA2a => "near_miss_a2a",
            Signal::NearMissEthereum => "near_miss_ethereum",
            Signal::NearMissBitcoin => "near_miss_bitcoin",
            Signal::NearMissLlmToolCalling => "near_miss_llm_tool_calling",
            Signal::JsonRpcOther => "jsonrpc_other",
            Signal::RecoveredParse => "recovered_parse",
        }
    }

    /// The signal named `name` ([`Signal::as_str`]), for rule files.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The evidence this signal carries on its own (before the framing cap).
    pub fn strength(&self) -> Evidence {
        match self {
            Signal::McpMethod
            | Signal::InitializeParams
            | Signal::InitializeResult
            | Signal::DiscoverResult
            | Signal::ToolsListResult
            | Signal::ToolCall
            | Signal::ToolResult
            | Signal::ResourcesResult
            | Signal::PromptsResult
            | Signal::ClientResult
            | Signal::CompletionResult
            | Signal::McpTask
            | Signal::InputRequired
            | Signal::McpMetaKeys
            | Signal::McpVersionError
            | Signal::SseEndpoint
            | Signal::ProviderMcpServer
            | Signal::ProviderMcpActivity => Evidence::Strong,
            Signal::AmbiguousMethod | Signal::ContentResult | Signal::McpError => Evidence::Weak,
            Signal::NonStandardFraming
            | Signal::NearMissLsp
            | Signal::NearMissAcp
            | Signal::NearMissA2a
            | Signal::NearMissEthereum
            | Signal::NearMissBitcoin
            | Signal::NearMissLlmToolCalling
            | Signal::JsonRpcOther
            | Signal::RecoveredParse => Evidence::None,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An MCP `Implementation` (`clientInfo` / `serverInfo`). Strings cut to 512
/// bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Implementation {
    pub name: String,
    pub version: Option<String>,
    pub title: Option<String>,
}

/// A tool invocation: MCP `tools/call`, or a provider-side MCP tool use.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// Cut to 512 bytes.
    pub name: String,
    /// The arguments as sent (may hold secrets: the alert layer decides
    /// whether to print them). Provider `arguments` strings holding JSON are
    /// parsed.
    pub arguments: Option<Value>,
}

/// The result of [`analyze`].
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub kind: PayloadKind,
    /// The body was a JSON-RPC batch (an array holding messages).
    pub batch: bool,
    /// The body was an SSE stream (`data:` / `event:` lines).
    pub sse: bool,
    pub messages: Vec<Message>,
    pub evidence: Evidence,
    /// Deduplicated, in [`Signal`] declaration order.
    pub signals: Vec<Signal>,
    /// Method names in first-seen order, deduplicated.
    pub methods: Vec<String>,
    /// First MCP protocol version seen (`initialize` or
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`).
    pub protocol_version: Option<String>,
    pub client_info: Option<Implementation>,
    pub server_info: Option<Implementation>,
    pub tools_called: Vec<ToolCall>,
    /// Tool names from `tools/list` results (or provider `mcp_list_tools`).
    pub tools_listed: Vec<String>,
    /// MCP `taskId`s seen (2025-11-25 tasks), deduplicated.
    pub task_ids: Vec<String>,
    /// MCP server URLs named to an LLM provider (`connector:<id>` for OpenAI
    /// connectors), deduplicated.
    pub provider_mcp_servers: Vec<String>,
    /// The body was longer than [`Limits::max_bytes`].
    pub truncated: bool,
    /// First parse error, one line.
    pub error: Option<String>,
    /// Values that were not analysed: batch elements that are not JSON-RPC
    /// messages, messages or top-level values beyond the cap, SSE events
    /// beyond the cap.
    pub skipped: usize,
    /// List cap, from [`Limits::max_messages`].
    cap: usize,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis::new(&Limits::default())
    }
}

pub(crate) const MAX_NAME_BYTES: usize = 512;
pub(crate) const MAX_URL_BYTES: usize = 2048;

/// `s` cut to at most `max` bytes, on a char boundary.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

impl Analysis {
    /// An empty analysis (kind `NotJson`, evidence `None`) whose lists are
    /// capped at `limits.max_messages`; a starting point for [`merge`].
    pub fn new(limits: &Limits) -> Self {
        Analysis {
            kind: PayloadKind::NotJson,
            batch: false,
            sse: false,
            messages: Vec::new(),
            evidence: Evidence::None,
            signals: Vec::new(),
            methods: Vec::new(),
            protocol_version: None,
            client_info: None,
            server_info: None,
            tools_called: Vec::new(),
            tools_listed: Vec::new(),
            task_ids: Vec::new(),
            provider_mcp_servers: Vec::new(),
            truncated: false,
            error: None,
            skipped: 0,
            cap: limits.max_messages,
        }
    }

    /// Whether `signal` was seen.
    pub fn has(&self, signal: Signal) -> bool {
        self.signals.binary_search(&signal).is_ok()
    }

    /// Whether the payload is MCP with at least `evidence`.
    pub fn is_mcp(&self, evidence: Evidence) -> bool {
        evidence > Evidence::None && self.evidence >= evidence
    }

    /// Adds `other` (e.g. the response to this request, or a later SSE
    /// event): kinds and evidence take the maximum, signals are united, lists
    /// appended (deduplicated where documented, capped), the first
    /// `protocol_version`/`client_info`/`server_info`/`error` kept.
    ///
    /// ```
    /// use shadowmcp_jsonrpc::{analyze, Analysis, Evidence, Limits};
    /// let limits = Limits::default();
    /// let mut exchange = Analysis::new(&limits);
    /// exchange.merge(analyze(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &limits));
    /// assert_eq!(exchange.evidence, Evidence::Weak); // ping alone is ambiguous
    /// let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"t\",\"inputSchema\":{}}]}}\n\n";
    /// exchange.merge(analyze(sse, &limits));
    /// assert_eq!(exchange.evidence, Evidence::Strong);
    /// assert_eq!(exchange.tools_listed, ["t"]);
    /// ```
    pub fn merge(&mut self, other: Analysis) {
        self.cap = self.cap.max(other.cap);
        self.kind = self.kind.max(other.kind);
        self.batch |= other.batch;
        self.sse |= other.sse;
        self.evidence = self.evidence.max(other.evidence);
        for s in other.signals {
            self.add_signal(s);
        }
        let room = self.cap.saturating_sub(self.messages.len());
        self.skipped = self
            .skipped
            .saturating_add(other.skipped)
            .saturating_add(other.messages.len().saturating_sub(room));
        self.messages.extend(other.messages.into_iter().take(room));
        for m in other.methods {
            self.add_method(&m);
        }
        if self.protocol_version.is_none() {
            self.protocol_version = other.protocol_version;
        }
        if self.client_info.is_none() {
            self.client_info = other.client_info;
        }
        if self.server_info.is_none() {
            self.server_info = other.server_info;
        }
        for t in other.tools_called {
            self.add_tool_call(t);
        }
        for t in other.tools_listed {
            push_unique(&mut self.tools_listed, t, self.cap);
        }
        for t in other.task_ids {
            push_unique(&mut self.task_ids, t, self.cap);
        }
        for u in other.provider_mcp_servers {
            push_unique(&mut self.provider_mcp_servers, u, self.cap);
        }
        self.truncated |= other.truncated;
        if self.error.is_none() {
            self.error = other.error;
        }
    }

    pub(crate) fn add_signal(&mut self, s: Signal) {
        if let Err(at) = self.signals.binary_search(&s) {
            self.signals.insert(at, s);
        }
    }

    /// Records a signal outside any JSON-RPC message, raising evidence by its
    /// strength.
    pub(crate) fn note(&mut self, s: Signal) {
        self.evidence = self.evidence.max(s.strength());
        self.add_signal(s);
    }

    pub(crate) fn add_method(&mut self, m: &str) {
        if !self.methods.iter().any(|x| x == m) && self.methods.len() < self.cap {
            self.methods.push(clip(m, MAX_NAME_BYTES));
        }
    }

    pub(crate) fn add_tool_call(&mut self, t: ToolCall) {
        if self.tools_called.len() < self.cap {
            self.tools_called.push(t);
        }
    }

    pub(crate) fn add_tool_listed(&mut self, name: &str) {
        push_unique(&mut self.tools_listed, clip(name, MAX_NAME_BYTES), self.cap);
    }

    pub(crate) fn add_task_id(&mut self, id: &str) {
        push_unique(&mut self.task_ids, clip(id, MAX_NAME_BYTES), self.cap);
    }

    pub(crate) fn add_provider_server(&mut self, url: &str) {
        push_unique(
            &mut self.provider_mcp_servers,
            clip(url, MAX_URL_BYTES),
            self.cap,
        );
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

fn push_unique(list: &mut Vec<String>, item: String, cap: usize) {
    if list.len() < cap && !list.contains(&item) {
        list.push(item);
    }
}

/// Combines `other` into `into`; see [`Analysis::merge`].
pub fn merge(into: &mut Analysis, other: Analysis) {
    into.merge(other);
}

/// Analyses one body: a single JSON-RPC message, a batch, concatenated JSON
/// values (NDJSON), an SSE stream (detected by a leading `data:`, `event:`,
/// `id:`, `retry:` or `:` line), or any other JSON. Never panics.
pub fn analyze(body: &[u8], limits: &Limits) -> Analysis {
    let mut a = Analysis::new(limits);
    let slice = match body.get(..limits.max_bytes) {
        Some(head) if head.len() < body.len() => {
            a.truncated = true;
            head
        }
        _ => body,
    };
    let text = parse::trim_input(slice);
    if text.is_empty() {
        return a;
    }
    if sse::looks_like_sse(text) {
        sse::analyze_stream(text, limits, &mut a);
    } else {
        analyze_json_into(text, limits, &mut a);
    }
    a
}

/// Parses `text` as JSON values and classifies them into `a`.
pub(crate) fn analyze_json_into(text: &[u8], limits: &Limits, a: &mut Analysis) {
    let parsed = parse::parse_values(text, limits.max_depth, limits.max_messages);
    if a.error.is_none() {
        a.error = parsed.error;
    }
    if parsed.recovered {
        a.add_signal(Signal::RecoveredParse);
    }
    a.skipped = a.skipped.saturating_add(parsed.dropped);
    for v in &parsed.values {
        classify::classify_value(v, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_are_unique_and_round_trip() {
        for (i, s) in Signal::ALL.iter().enumerate() {
            assert_eq!(Signal::from_name(s.as_str()), Some(*s));
            for t in &Signal::ALL[i + 1..] {
                assert!(s < t, "ALL must be in declaration order");
                assert_ne!(s.as_str(), t.as_str());
            }
        }
        assert_eq!(Signal::from_name("nope"), None);
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("ééé", 4), "éé");
    }
}
