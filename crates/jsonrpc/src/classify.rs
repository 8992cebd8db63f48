//! Classification of parsed JSON values (rules: crate docs).

use serde_json::{Map, Value};

use crate::methods::{lookup_method, near_miss_method, MethodClass, NearMiss};
use crate::{
    clip, Analysis, Evidence, Id, Implementation, Message, PayloadKind, Role, Signal, ToolCall,
    MAX_NAME_BYTES,
};

/// `_meta` key prefix reserved by MCP (mcp-facts.md §c.3).
const META_PREFIX: &str = "io.modelcontextprotocol/";

/// MCP task statuses (2025-11-25 schema.ts, mcp-facts.md §c.1).
const TASK_STATUSES: &[&str] = &[
    "working",
    "input_required",
    "completed",
    "failed",
    "cancelled",
];

/// Error codes MCP defines (mcp-facts.md §c.1).
const MCP_ERROR_CODES: &[i64] = &[-32002, -32042, -32020, -32021, -32022];

/// Classifies one top-level value into `a`.
pub(crate) fn classify_value(v: &Value, a: &mut Analysis) {
    a.kind = a.kind.max(PayloadKind::Json);
    match v {
        Value::Array(items) => {
            let is_batch = items
                .iter()
                .any(|item| item.as_object().and_then(frame).is_some());
            if !is_batch {
                return;
            }
            a.batch = true;
            for item in items {
                let framed = item.as_object().and_then(|o| frame(o).map(|f| (o, f)));
                match framed {
                    Some((obj, f)) if a.messages.len() < a.cap() => classify_message(obj, &f, a),
                    _ => a.skipped = a.skipped.saturating_add(1),
                }
            }
        }
        Value::Object(obj) => match frame(obj) {
            Some(f) if a.messages.len() < a.cap() => classify_message(obj, &f, a),
            Some(_) => a.skipped = a.skipped.saturating_add(1),
            None => classify_plain(obj, a),
        },
        _ => {}
    }
}

/// The JSON-RPC envelope of an object.
struct Frame<'a> {
    /// `"jsonrpc":"2.0"`.
    v2: bool,
    role: Role,
    method: Option<&'a str>,
}

/// Recognises JSON-RPC 2.0 (`"jsonrpc"` member) and 1.0 (no `jsonrpc`, but a
/// request has `method`+`params`+`id`, a response `result`+`error`+`id`).
fn frame(obj: &Map<String, Value>) -> Option<Frame<'_>> {
    let jsonrpc = obj.get("jsonrpc");
    let v2 = jsonrpc.and_then(Value::as_str) == Some("2.0");
    let has = |k: &str| obj.contains_key(k);
    if let Some(method) = obj.get("method").and_then(Value::as_str) {
        if jsonrpc.is_none() && !(has("id") && has("params")) {
            return None;
        }
        let role = match obj.get("id") {
            None => Role::Notification,
            Some(Value::Null) if !v2 => Role::Notification,
            Some(_) => Role::Request,
        };
        return Some(Frame {
            v2,
            role,
            method: Some(method),
        });
    }
    if !has("id") || !(has("result") || has("error")) {
        return None;
    }
    if jsonrpc.is_none() && !(has("result") && has("error")) {
        return None;
    }
    let role = match obj.get("error") {
        Some(e) if !e.is_null() => Role::Error,
        _ => Role::Response,
    };
    Some(Frame {
        v2,
        role,
        method: None,
    })
}

fn id_of(v: Option<&Value>) -> Option<Id> {
    match v? {
        Value::Number(n) => Some(Id::Number(n.clone())),
        Value::String(s) => Some(Id::String(clip(s, MAX_NAME_BYTES))),
        Value::Null => Some(Id::Null),
        _ => None,
    }
}

/// Signals of one message, before they are added to the analysis.
#[derive(Default)]
struct Found(Vec<Signal>);

impl Found {
    fn add(&mut self, s: Signal) {
        if !self.0.contains(&s) {
            self.0.push(s);
        }
    }
    fn evidence(&self) -> Evidence {
        self.0
            .iter()
            .map(Signal::strength)
            .max()
            .unwrap_or_default()
    }
}

fn classify_message(obj: &Map<String, Value>, f: &Frame<'_>, a: &mut Analysis) {
    a.kind = PayloadKind::JsonRpc;
    let mut found = Found::default();
    let params = obj.get("params").and_then(Value::as_object);
    match f.role {
        Role::Request | Role::Notification => {
            if let Some(method) = f.method {
                classify_method(method, params, &mut found, a);
                a.add_method(method);
            }
            if let Some(p) = params {
                meta(p, &mut found, a);
            }
        }
        Role::Response => {
            if let Some(result) = obj.get("result").and_then(Value::as_object) {
                classify_result(result, &mut found, a);
                meta(result, &mut found, a);
            }
        }
        Role::Error => {
            if let Some(err) = obj.get("error").and_then(Value::as_object) {
                classify_error(err, &mut found);
            }
        }
    }
    let mut evidence = found.evidence();
    if !f.v2 && evidence > Evidence::None {
        // MCP SDKs validate `"jsonrpc":"2.0"`, so a message without it would
        // be rejected by a real MCP peer.
        evidence = evidence.min(Evidence::Weak);
        found.add(Signal::NonStandardFraming);
    }
    if found.0.is_empty() {
        found.add(Signal::JsonRpcOther);
    }
    a.evidence = a.evidence.max(evidence);
    for s in found.0 {
        a.add_signal(s);
    }
    a.messages.push(Message {
        role: f.role,
        method: f.method.map(|m| clip(m, MAX_NAME_BYTES)),
        id: id_of(obj.get("id")),
    });
}

fn near_miss_signal(n: NearMiss) -> Signal {
    match n {
        NearMiss::Lsp => Signal::NearMissLsp,
        NearMiss::Acp => Signal::NearMissAcp,
        NearMiss::A2a => Signal::NearMissA2a,
        NearMiss::Ethereum => Signal::NearMissEthereum,
        NearMiss::Bitcoin => Signal::NearMissBitcoin,
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn obj_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    obj.get(key).and_then(Value::as_object)
}

/// Objects of the array at `obj[key]`.
fn objects<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    obj.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn implementation(obj: &Map<String, Value>) -> Option<Implementation> {
    let name = str_field(obj, "name")?;
    Some(Implementation {
        name: clip(name, MAX_NAME_BYTES),
        version: str_field(obj, "version").map(|v| clip(v, MAX_NAME_BYTES)),
        title: str_field(obj, "title").map(|v| clip(v, MAX_NAME_BYTES)),
    })
}

fn set_protocol_version(a: &mut Analysis, v: &str) {
    if a.protocol_version.is_none() {
        a.protocol_version = Some(clip(v, MAX_NAME_BYTES));
    }
}

fn classify_method(
    method: &str,
    params: Option<&Map<String, Value>>,
    found: &mut Found,
    a: &mut Analysis,
) {
    let Some(info) = lookup_method(method) else {
        if let Some(n) = near_miss_method(method) {
            found.add(near_miss_signal(n));
        }
        return;
    };
    match info.class {
        MethodClass::McpOnly => {
            found.add(Signal::McpMethod);
            if let Some(task) = params.and_then(|p| str_field(p, "taskId")) {
                found.add(Signal::McpTask);
                a.add_task_id(task);
            }
            if method == "tools/call" {
                if let Some(name) = params.and_then(|p| str_field(p, "name")) {
                    found.add(Signal::ToolCall);
                    a.add_tool_call(ToolCall {
                        name: clip(name, MAX_NAME_BYTES),
                        arguments: params.and_then(|p| p.get("arguments")).cloned(),
                    });
                }
            }
        }
        MethodClass::Shared => found.add(Signal::AmbiguousMethod),
        MethodClass::Initialize => initialize(params, found, a),
        MethodClass::TaskShared => {
            let p = params;
            if let Some(task) = p.and_then(|p| str_field(p, "taskId")) {
                found.add(Signal::McpMethod);
                found.add(Signal::McpTask);
                a.add_task_id(task);
            } else if p.is_some_and(|p| p.contains_key("id")) {
                // A2A ≤ 0.3 `TaskQueryParams`/`TaskIdParams` use `id`.
                found.add(Signal::NearMissA2a);
            } else if p.is_some_and(|p| p.contains_key("cursor")) {
                // MCP `tasks/list` is a PaginatedRequest; A2A's uses pageToken.
                found.add(Signal::McpMethod);
            } else {
                found.add(Signal::AmbiguousMethod);
            }
        }
    }
}

/// `initialize`: MCP, LSP and ACP all start with it (mcp-facts.md §c.2, §d.3,
/// §d.5).
fn initialize(params: Option<&Map<String, Value>>, found: &mut Found, a: &mut Analysis) {
    let Some(p) = params else {
        found.add(Signal::AmbiguousMethod);
        return;
    };
    let version = p.get("protocolVersion");
    let client_info = obj_field(p, "clientInfo");
    let mut decided = false;
    if let (Some(Value::String(v)), Some(ci)) = (version, client_info) {
        found.add(Signal::InitializeParams);
        set_protocol_version(a, v);
        if a.client_info.is_none() {
            a.client_info = implementation(ci);
        }
        decided = true;
    }
    if ["processId", "rootUri", "rootPath", "workspaceFolders"]
        .iter()
        .any(|k| p.contains_key(*k))
    {
        found.add(Signal::NearMissLsp);
        decided = true;
    }
    if version.is_some_and(Value::is_number) || p.contains_key("clientCapabilities") {
        found.add(Signal::NearMissAcp);
        decided = true;
    }
    if !decided {
        found.add(Signal::AmbiguousMethod);
    }
}

fn classify_result(r: &Map<String, Value>, found: &mut Found, a: &mut Analysis) {
    // initialize result (MCP) vs LSP / ACP results.
    if let (Some(Value::String(v)), Some(si)) =
        (r.get("protocolVersion"), obj_field(r, "serverInfo"))
    {
        found.add(Signal::InitializeResult);
        set_protocol_version(a, v);
        if a.server_info.is_none() {
            a.server_info = implementation(si);
        }
    }
    if r.get("protocolVersion").is_some_and(Value::is_number)
        || ["agentInfo", "agentCapabilities", "authMethods"]
            .iter()
            .any(|k| r.contains_key(*k))
    {
        found.add(Signal::NearMissAcp);
    }
    if let Some(caps) = obj_field(r, "capabilities") {
        if caps
            .keys()
            .any(|k| k.ends_with("Provider") || k == "textDocumentSync")
        {
            found.add(Signal::NearMissLsp);
        }
        let versions = r.get("supportedVersions").and_then(Value::as_array);
        if versions.is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_string)) {
            found.add(Signal::DiscoverResult);
        }
    }
    // tools/list
    let mut listed = false;
    for tool in objects(r, "tools") {
        if let (Some(name), Some(_)) = (str_field(tool, "name"), obj_field(tool, "inputSchema")) {
            listed = true;
            a.add_tool_listed(name);
        }
    }
    if listed {
        found.add(Signal::ToolsListResult);
    }
    // tools/call result
    let mut typed_content = objects(r, "content")
        .filter(|c| str_field(c, "type").is_some())
        .peekable();
    if typed_content.peek().is_some() {
        if r.get("isError").is_some_and(Value::is_boolean) || r.contains_key("structuredContent") {
            found.add(Signal::ToolResult);
        } else {
            found.add(Signal::ContentResult);
        }
    }
    // resources/list, resources/templates/list, resources/read
    let resources = objects(r, "resources")
        .any(|x| str_field(x, "uri").is_some() && str_field(x, "name").is_some())
        || objects(r, "resourceTemplates").any(|x| str_field(x, "uriTemplate").is_some())
        || objects(r, "contents").any(|x| {
            str_field(x, "uri").is_some() && (x.contains_key("text") || x.contains_key("blob"))
        });
    if resources {
        found.add(Signal::ResourcesResult);
    }
    // prompts/list, prompts/get
    let prompts = objects(r, "prompts").any(|x| str_field(x, "name").is_some())
        || objects(r, "messages").any(|x| {
            str_field(x, "role").is_some()
                && obj_field(x, "content").is_some_and(|c| str_field(c, "type").is_some())
        });
    if prompts {
        found.add(Signal::PromptsResult);
    }
    // Answers to server→client requests: CreateMessageResult (content is an
    // object, or an array from 2025-11-25), ElicitResult, ListRootsResult.
    let typed = |v: Option<&Value>| match v {
        Some(Value::Object(c)) => str_field(c, "type").is_some(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .any(|c| str_field(c, "type").is_some()),
        _ => false,
    };
    let sampling = str_field(r, "model").is_some()
        && str_field(r, "role").is_some()
        && typed(r.get("content"));
    let elicitation = str_field(r, "action")
        .is_some_and(|a| ["accept", "decline", "cancel"].contains(&a))
        && r.keys()
            .all(|k| matches!(k.as_str(), "action" | "content" | "_meta"));
    let roots =
        objects(r, "roots").any(|x| str_field(x, "uri").is_some_and(|u| u.starts_with("file://")));
    if sampling || elicitation || roots {
        found.add(Signal::ClientResult);
    }
    if obj_field(r, "completion").is_some_and(|c| c.get("values").is_some_and(Value::is_array)) {
        found.add(Signal::CompletionResult);
    }
    // tasks (2025-11-25): Task, CreateTaskResult, ListTasksResult.
    if let (Some(id), Some(status)) = (str_field(r, "taskId"), str_field(r, "status")) {
        if TASK_STATUSES.contains(&status) {
            found.add(Signal::McpTask);
            a.add_task_id(id);
        }
    }
    if let Some(id) = obj_field(r, "task").and_then(|t| str_field(t, "taskId")) {
        found.add(Signal::McpTask);
        a.add_task_id(id);
    }
    for t in objects(r, "tasks") {
        if let Some(id) = str_field(t, "taskId") {
            found.add(Signal::McpTask);
            a.add_task_id(id);
        }
    }
    // 2026-07-28 multi-round-trip request.
    if str_field(r, "resultType") == Some("input_required") && r.contains_key("inputRequests") {
        found.add(Signal::InputRequired);
    }
    // A2A Task / Message results (v0.3 `kind`).
    match str_field(r, "kind") {
        Some("task") if r.contains_key("contextId") || r.contains_key("status") => {
            found.add(Signal::NearMissA2a)
        }
        Some("message") if r.contains_key("parts") => found.add(Signal::NearMissA2a),
        _ => {}
    }
}

fn classify_error(e: &Map<String, Value>, found: &mut Found) {
    if e.get("code")
        .and_then(Value::as_i64)
        .is_some_and(|c| MCP_ERROR_CODES.contains(&c))
    {
        found.add(Signal::McpError);
    }
    if let Some(data) = obj_field(e, "data") {
        let supported = data.get("supported").and_then(Value::as_array);
        if supported.is_some_and(|s| s.iter().any(Value::is_string))
            && data.contains_key("requested")
        {
            found.add(Signal::McpVersionError);
        }
    }
}

/// `_meta` keys under `io.modelcontextprotocol/` (mcp-facts.md §c.3).
fn meta(container: &Map<String, Value>, found: &mut Found, a: &mut Analysis) {
    let Some(m) = obj_field(container, "_meta") else {
        return;
    };
    if !m.keys().any(|k| k.starts_with(META_PREFIX)) {
        return;
    }
    found.add(Signal::McpMetaKeys);
    if let Some(v) = str_field(m, "io.modelcontextprotocol/protocolVersion") {
        set_protocol_version(a, v);
    }
    if a.client_info.is_none() {
        a.client_info = obj_field(m, "io.modelcontextprotocol/clientInfo").and_then(implementation);
    }
    if a.server_info.is_none() {
        a.server_info = obj_field(m, "io.modelcontextprotocol/serverInfo").and_then(implementation);
    }
    if let Some(id) =
        obj_field(m, "io.modelcontextprotocol/related-task").and_then(|t| str_field(t, "taskId"))
    {
        found.add(Signal::McpTask);
        a.add_task_id(id);
    }
}

/// Non-JSON-RPC objects: LLM API bodies (tool calling, provider-side MCP) and
/// A2A agent cards / REST bodies (mcp-facts.md §d.4, §d.6, §d.7), including
/// the envelopes of their streaming events (one level down, no recursion).
/// Every top-level key that [`classify_plain`] reads (directly or through
/// `plain_shapes`). The outline parser (`parse::parse_values`) keeps only
/// these members of an object that is not a JSON-RPC frame candidate, so a
/// key read here must be listed here; `outline_and_full_parses_classify_alike`
/// (parse.rs) checks the two against every shape classify knows.
pub(crate) const PLAIN_KEYS: &[&str] = &[
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
];

/// Keys [`frame`] needs to see a JSON-RPC envelope: an object with one of
/// them is parsed whole.
pub(crate) const FRAME_KEYS: &[&str] = &["jsonrpc", "method", "result", "error"];

fn classify_plain(obj: &Map<String, Value>, a: &mut Analysis) {
    plain_shapes(obj, a);
    // OpenAI Responses stream: `response.created` carries the request's
    // `response` (tools included); `response.output_item.*` an `item`;
    // `response.mcp_call.*` / `response.mcp_list_tools.*` name MCP directly.
    if let Some(response) = obj_field(obj, "response") {
        plain_shapes(response, a);
    }
    // Anthropic stream: `content_block_start` carries a `content_block`.
    content_blocks(
        obj_field(obj, "item")
            .into_iter()
            .chain(obj_field(obj, "content_block")),
        a,
    );
    if str_field(obj, "type").is_some_and(|t| t.starts_with("response.mcp_")) {
        a.note(Signal::ProviderMcpActivity);
    }
}

fn plain_shapes(obj: &Map<String, Value>, a: &mut Analysis) {
    // Anthropic MCP connector: `mcp_servers: [{type:"url", url, name}]`.
    for server in objects(obj, "mcp_servers") {
        if let Some(url) = str_field(server, "url") {
            a.note(Signal::ProviderMcpServer);
            a.add_provider_server(url);
        }
    }
    // Tool definitions in a chat / messages / responses request.
    for tool in objects(obj, "tools") {
        match str_field(tool, "type") {
            Some("mcp") => {
                if let Some(url) = str_field(tool, "server_url") {
                    a.add_provider_server(url);
                } else if let Some(id) = str_field(tool, "connector_id") {
                    a.add_provider_server(&format!("connector:{}", clip(id, MAX_NAME_BYTES)));
                } else if let Some(id) = str_field(tool, "tunnel_id") {
                    // Secure MCP Tunnel to a private server
                    // (developers.openai.com/api/docs/guides/tools-remote-mcp).
                    a.add_provider_server(&format!("tunnel:{}", clip(id, MAX_NAME_BYTES)));
                }
                a.note(Signal::ProviderMcpServer);
            }
            Some("mcp_toolset") => a.note(Signal::ProviderMcpServer),
            Some("function") => a.note(Signal::NearMissLlmToolCalling),
            _ if tool.contains_key("input_schema") || tool.contains_key("functionDeclarations") => {
                a.note(Signal::NearMissLlmToolCalling)
            }
            _ => {}
        }
    }
    // Responses: OpenAI chat, Anthropic messages, OpenAI Responses, Gemini.
    for choice in objects(obj, "choices") {
        let message = obj_field(choice, "message").or_else(|| obj_field(choice, "delta"));
        if message.is_some_and(|m| m.contains_key("tool_calls")) {
            a.note(Signal::NearMissLlmToolCalling);
        }
    }
    content_blocks(objects(obj, "content"), a);
    for message in objects(obj, "messages") {
        content_blocks(objects(message, "content"), a);
    }
    content_blocks(objects(obj, "output").chain(objects(obj, "input")), a);
    for candidate in objects(obj, "candidates") {
        let parts = obj_field(candidate, "content")
            .into_iter()
            .flat_map(|c| objects(c, "parts"));
        for part in parts {
            if part.contains_key("functionCall") {
                a.note(Signal::NearMissLlmToolCalling);
            }
        }
    }
    // A2A agent card, or a REST `message:send` body.
    let card = obj.get("skills").is_some_and(Value::is_array)
        && (obj.contains_key("defaultInputModes") || obj.contains_key("capabilities"));
    let a2a_message = obj_field(obj, "message")
        .is_some_and(|m| m.contains_key("parts") && m.contains_key("messageId"));
    if card || a2a_message {
        a.note(Signal::NearMissA2a);
    }
}

/// Anthropic content blocks and OpenAI Responses items.
fn content_blocks<'a>(blocks: impl Iterator<Item = &'a Map<String, Value>>, a: &mut Analysis) {
    for block in blocks {
        match str_field(block, "type") {
            Some("tool_use") | Some("function_call") => a.note(Signal::NearMissLlmToolCalling),
            Some("mcp_tool_use") => {
                a.note(Signal::ProviderMcpActivity);
                provider_tool_call(block, "input", a);
            }
            Some("mcp_call") => {
                a.note(Signal::ProviderMcpActivity);
                provider_tool_call(block, "arguments", a);
            }
            Some("mcp_tool_result")
            | Some("mcp_approval_request")
            | Some("mcp_approval_response") => a.note(Signal::ProviderMcpActivity),
            Some("mcp_list_tools") => {
                a.note(Signal::ProviderMcpActivity);
                for tool in objects(block, "tools") {
                    if let Some(name) = str_field(tool, "name") {
                        a.add_tool_listed(name);
                    }
                }
            }
            _ => {}
        }
    }
}

fn provider_tool_call(block: &Map<String, Value>, args_key: &str, a: &mut Analysis) {
    let Some(name) = str_field(block, "name") else {
        return;
    };
    let arguments = block.get(args_key).map(|v| match v {
        // OpenAI sends arguments as a JSON string.
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    });
    a.add_tool_call(ToolCall {
        name: clip(name, MAX_NAME_BYTES),
        arguments,
    });
}
