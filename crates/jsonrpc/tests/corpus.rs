//! Table-driven classification tests: real-looking messages from every MCP
//! era, every near-miss protocol, evasions, truncation, non-JSON.

use shadowmcp_jsonrpc::{
    analyze, analyze_sse_event, merge, Analysis, Evidence, Id, Implementation, Limits, PayloadKind,
    Role, Signal,
};
use Evidence::{None as NoEv, Strong, Weak};
use PayloadKind::{Json, JsonRpc, NotJson};
use Signal::*;

struct Case {
    name: &'static str,
    body: &'static str,
    kind: PayloadKind,
    evidence: Evidence,
    signals: &'static [Signal],
}

const fn case(
    name: &'static str,
    kind: PayloadKind,
    evidence: Evidence,
    signals: &'static [Signal],
    body: &'static str,
) -> Case {
    Case {
        name,
        body,
        kind,
        evidence,
        signals,
    }
}

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let a = analyze(c.body.as_bytes(), &Limits::default());
        if a.kind != c.kind || a.evidence != c.evidence || a.signals != c.signals {
            failures.push(format!(
                "{}: got kind={:?} evidence={:?} signals={:?}, want {:?} {:?} {:?}",
                c.name, a.kind, a.evidence, a.signals, c.kind, c.evidence, c.signals
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Messages from every spec era (shapes from schema/<era>/schema.ts and the
/// lifecycle pages; mcp-facts.md §c).
const MCP_ERAS: &[Case] = &[
    case(
        "2024-11-05 initialize",
        JsonRpc,
        Strong,
        &[InitializeParams],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"claude-ai","version":"0.1.0"}}}"#,
    ),
    case(
        "2024-11-05 initialize result",
        JsonRpc,
        Strong,
        &[InitializeResult],
        r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2024-11-05","capabilities":{"tools":{"listChanged":true},"resources":{}},"serverInfo":{"name":"example-servers/everything","version":"1.0.0"}}}"#,
    ),
    case(
        "2025-03-26 initialize",
        JsonRpc,
        Strong,
        &[InitializeParams],
        r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"mcp-inspector","version":"0.9.0"}}}"#,
    ),
    case(
        "2025-03-26 initialize result",
        JsonRpc,
        Strong,
        &[InitializeResult],
        r#"{"result":{"protocolVersion":"2025-03-26","capabilities":{"logging":{},"completions":{}},"serverInfo":{"name":"github-mcp-server","version":"v0.4.0"},"instructions":"Use the tools."},"jsonrpc":"2.0","id":"init-1"}"#,
    ),
    case(
        "2025-03-26 batch",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}},{"jsonrpc":"2.0","id":3,"method":"resources/templates/list"}]"#,
    ),
    case(
        "2025-06-18 initialize",
        JsonRpc,
        Strong,
        &[InitializeParams],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},"clientInfo":{"name":"ExampleClient","title":"Example Client Display Name","version":"1.0.0"}}}"#,
    ),
    case(
        "2025-06-18 initialize result",
        JsonRpc,
        Strong,
        &[InitializeResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"logging":{},"prompts":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"tools":{"listChanged":true}},"serverInfo":{"name":"ExampleServer","title":"Example Server Display Name","version":"1.0.0"},"instructions":"Optional instructions for the client"}}"#,
    ),
    case(
        "2025-06-18 elicitation/create",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":5,"method":"elicitation/create","params":{"message":"Please provide your GitHub username","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}"#,
    ),
    case(
        "2025-11-25 initialize",
        JsonRpc,
        Strong,
        &[InitializeParams],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{},"url":{}},"tasks":{"requests":{"tools":{"call":{}}}}},"clientInfo":{"name":"vscode","version":"1.107.0","icons":[{"src":"https://example.com/i.png"}],"websiteUrl":"https://code.visualstudio.com"}}}"#,
    ),
    case(
        "2025-11-25 initialize result",
        JsonRpc,
        Strong,
        &[InitializeResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tasks":{"list":{},"cancel":{}},"tools":{}},"serverInfo":{"name":"everything","version":"2.0.0","description":"demo"}}}"#,
    ),
    case(
        "2025-11-25 tasks/get",
        JsonRpc,
        Strong,
        &[McpMethod, McpTask],
        r#"{"jsonrpc":"2.0","id":9,"method":"tasks/get","params":{"taskId":"786512e2-9e0d-44bd-8f29-789f320fe840"}}"#,
    ),
    case(
        "2025-11-25 tasks/cancel",
        JsonRpc,
        Strong,
        &[McpMethod, McpTask],
        r#"{"jsonrpc":"2.0","id":10,"method":"tasks/cancel","params":{"taskId":"t-1"}}"#,
    ),
    case(
        "2025-11-25 tasks/list cursor",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":11,"method":"tasks/list","params":{"cursor":"abc"}}"#,
    ),
    case(
        "2025-11-25 task result",
        JsonRpc,
        Strong,
        &[McpTask],
        r#"{"jsonrpc":"2.0","id":9,"result":{"taskId":"786512e2","status":"working","statusMessage":"The operation is now in progress.","createdAt":"2025-11-25T10:30:00Z","lastUpdatedAt":"2025-11-25T10:40:00Z","ttl":60000,"pollInterval":5000}}"#,
    ),
    case(
        "2025-11-25 create task result",
        JsonRpc,
        Strong,
        &[McpTask],
        r#"{"jsonrpc":"2.0","id":3,"result":{"task":{"taskId":"t-2","status":"working","createdAt":"2025-11-25T10:30:00Z","ttl":60000}}}"#,
    ),
    case(
        "2025-11-25 tasks/status notification",
        JsonRpc,
        Strong,
        &[McpMethod, McpTask],
        r#"{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"t-2","status":"completed","createdAt":"x","lastUpdatedAt":"y","ttl":1}}"#,
    ),
    case(
        "2026-07-28 server/discover",
        JsonRpc,
        Strong,
        &[McpMethod, McpMetaKeys],
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    ),
    case(
        "2026-07-28 discover result",
        JsonRpc,
        Strong,
        &[DiscoverResult, McpMetaKeys],
        r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"weather","version":"3.1.0"}},"instructions":"...","ttlMs":3600000,"cacheScope":"public"}}"#,
    ),
    case(
        "2026-07-28 tools/call",
        JsonRpc,
        Strong,
        &[McpMethod, ToolCall, McpMetaKeys],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"New York"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    ),
    case(
        "2026-07-28 subscriptions/listen",
        JsonRpc,
        Strong,
        &[McpMethod, McpMetaKeys],
        r#"{"jsonrpc":"2.0","id":4,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    ),
    case(
        "2026-07-28 input_required",
        JsonRpc,
        Strong,
        &[InputRequired],
        r#"{"jsonrpc":"2.0","id":2,"result":{"resultType":"input_required","inputRequests":{"r1":{"method":"elicitation/create","params":{"message":"Confirm?"}}}}}"#,
    ),
    case(
        "2026-07-28 meta-only result",
        JsonRpc,
        Strong,
        &[McpMetaKeys],
        r#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s"}}}}"#,
    ),
];

const MCP_METHODS_AND_RESULTS: &[Case] = &[
    case(
        "notifications/initialized",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ),
    case(
        "tools/list_changed",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
    ),
    case(
        "notifications/message",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","logger":"db","data":{"error":"x"}}}"#,
    ),
    case(
        "sampling/createMessage",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"hi"}}],"maxTokens":100}}"#,
    ),
    case(
        "roots/list",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"roots/list"}"#,
    ),
    case(
        "completion/complete",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"code_review"},"argument":{"name":"language","value":"py"}}}"#,
    ),
    case(
        "logging/setLevel",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"info"}}"#,
    ),
    case(
        "resources/read",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///project/src/main.rs"}}"#,
    ),
    case(
        "prompts/get",
        JsonRpc,
        Strong,
        &[McpMethod],
        r#"{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"code_review","arguments":{"code":"x"}}}"#,
    ),
    case(
        "tools/call",
        JsonRpc,
        Strong,
        &[McpMethod, ToolCall],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}"#,
    ),
    case(
        "tools/list result",
        JsonRpc,
        Strong,
        &[ToolsListResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_weather","title":"Weather","description":"Get weather","inputSchema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}},{"name":"search","inputSchema":{"type":"object"}}],"nextCursor":"n"}}"#,
    ),
    case(
        "tool result",
        JsonRpc,
        Strong,
        &[ToolResult],
        r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"72F"}],"isError":false}}"#,
    ),
    case(
        "tool result structured",
        JsonRpc,
        Strong,
        &[ToolResult],
        r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"{}"}],"structuredContent":{"t":22.5}}}"#,
    ),
    case(
        "content only",
        JsonRpc,
        Weak,
        &[ContentResult],
        r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"72F"}]}}"#,
    ),
    case(
        "resources/list result",
        JsonRpc,
        Strong,
        &[ResourcesResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///project/src/main.rs","name":"main.rs","mimeType":"text/x-rust"}]}}"#,
    ),
    case(
        "resources/read result",
        JsonRpc,
        Strong,
        &[ResourcesResult],
        r#"{"jsonrpc":"2.0","id":2,"result":{"contents":[{"uri":"file:///a","mimeType":"text/plain","text":"hello"}]}}"#,
    ),
    case(
        "templates result",
        JsonRpc,
        Strong,
        &[ResourcesResult],
        r#"{"jsonrpc":"2.0","id":3,"result":{"resourceTemplates":[{"uriTemplate":"file:///{path}","name":"Project Files"}]}}"#,
    ),
    case(
        "prompts/list result",
        JsonRpc,
        Strong,
        &[PromptsResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"code_review","description":"Review","arguments":[{"name":"code","required":true}]}]}}"#,
    ),
    case(
        "prompts/get result",
        JsonRpc,
        Strong,
        &[PromptsResult],
        r#"{"jsonrpc":"2.0","id":2,"result":{"description":"Code review","messages":[{"role":"user","content":{"type":"text","text":"Review this"}}]}}"#,
    ),
    case(
        "sampling result",
        JsonRpc,
        Strong,
        &[ClientResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"role":"assistant","content":{"type":"text","text":"The capital of France is Paris."},"model":"claude-3-sonnet-20240307","stopReason":"endTurn"}}"#,
    ),
    case(
        "sampling result with content array",
        JsonRpc,
        Strong,
        &[ClientResult, ContentResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"w","input":{}}],"model":"m","stopReason":"toolUse"}}"#,
    ),
    case(
        "elicitation result",
        JsonRpc,
        Strong,
        &[ClientResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"action":"accept","content":{"name":"octocat"}}}"#,
    ),
    case(
        "other action result",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"jsonrpc":"2.0","id":1,"result":{"action":"accept","order":42}}"#,
    ),
    case(
        "roots result",
        JsonRpc,
        Strong,
        &[ClientResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"roots":[{"uri":"file:///home/user/projects/myproject","name":"My Project"}]}}"#,
    ),
    case(
        "completion result",
        JsonRpc,
        Strong,
        &[CompletionResult],
        r#"{"jsonrpc":"2.0","id":1,"result":{"completion":{"values":["python","pytorch","pyside"],"total":10,"hasMore":true}}}"#,
    ),
    case(
        "version error",
        JsonRpc,
        Strong,
        &[McpVersionError],
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Unsupported protocol version","data":{"supported":["2024-11-05"],"requested":"1.0.0"}}}"#,
    ),
    case(
        "resource not found",
        JsonRpc,
        Weak,
        &[McpError],
        r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32002,"message":"Resource not found","data":{"uri":"file:///x"}}}"#,
    ),
    case(
        "ping",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","id":"123","method":"ping"}"#,
    ),
    case(
        "progress",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"abc","progress":50,"total":100}}"#,
    ),
    case(
        "cancelled",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"123","reason":"timeout"}}"#,
    ),
    case(
        "bare initialize",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#,
    ),
    case(
        "initialize without params",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#,
    ),
    case(
        "tasks/get without params",
        JsonRpc,
        Weak,
        &[AmbiguousMethod],
        r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get"}"#,
    ),
    case(
        "empty result",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    ),
];

/// Protocols that share JSON-RPC or tool vocabulary with MCP (mcp-facts.md §d).
const NEAR_MISSES: &[Case] = &[
    case(
        "LSP initialize",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":1234,"clientInfo":{"name":"Visual Studio Code","version":"1.90.0"},"locale":"en","rootPath":"/src","rootUri":"file:///src","capabilities":{"workspace":{"applyEdit":true},"textDocument":{}},"trace":"off","workspaceFolders":[{"uri":"file:///src","name":"src"}]}}"#,
    ),
    case(
        "LSP initialize null processId",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":null,"rootUri":null,"capabilities":{}}}"#,
    ),
    case(
        "LSP initialize result",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","id":0,"result":{"capabilities":{"textDocumentSync":2,"completionProvider":{"resolveProvider":true},"hoverProvider":true},"serverInfo":{"name":"rust-analyzer","version":"1.0"}}}"#,
    ),
    case(
        "LSP initialized",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
    ),
    case(
        "LSP didOpen",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a.rs","languageId":"rust","version":1,"text":"fn main(){}"}}}"#,
    ),
    case(
        "LSP $/progress",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","method":"$/progress","params":{"token":1,"value":{"kind":"begin","title":"Indexing"}}}"#,
    ),
    case(
        "LSP workspace/configuration",
        JsonRpc,
        NoEv,
        &[NearMissLsp],
        r#"{"jsonrpc":"2.0","id":3,"method":"workspace/configuration","params":{"items":[]}}"#,
    ),
    case(
        "ACP initialize",
        JsonRpc,
        NoEv,
        &[NearMissAcp],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true,"writeTextFile":true},"terminal":true},"clientInfo":{"name":"my-client","title":"My Client","version":"1.0.0"}}}"#,
    ),
    case(
        "ACP v2 initialize",
        JsonRpc,
        NoEv,
        &[NearMissAcp],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":2,"capabilities":{},"clientInfo":{"name":"zed","version":"0.200.0"}}}"#,
    ),
    case(
        "ACP initialize result",
        JsonRpc,
        NoEv,
        &[NearMissAcp],
        r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":1,"agentCapabilities":{"loadSession":true,"mcp":{"http":true,"sse":true}},"agentInfo":{"name":"claude-code","version":"1.0"},"authMethods":[]}}"#,
    ),
    case(
        "ACP session/new",
        JsonRpc,
        NoEv,
        &[NearMissAcp],
        r#"{"jsonrpc":"2.0","id":1,"method":"session/new","params":{"cwd":"/home/u/p","mcpServers":[]}}"#,
    ),
    case(
        "ACP session/prompt",
        JsonRpc,
        NoEv,
        &[NearMissAcp],
        r#"{"jsonrpc":"2.0","id":2,"method":"session/prompt","params":{"sessionId":"s1","prompt":[{"type":"text","text":"hi"}]}}"#,
    ),
    case(
        "A2A message/send",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"tell me a joke"}],"messageId":"9229e770-767c-417b-a0b0-f0741243c589"},"metadata":{}}}"#,
    ),
    case(
        "A2A message/stream",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":2,"method":"message/stream","params":{"message":{"role":"user","parts":[],"messageId":"m"}}}"#,
    ),
    case(
        "A2A tasks/get",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{"id":"363422be-b0f9-4692-a24d-278670e7c7f1","historyLength":10}}"#,
    ),
    case(
        "A2A tasks/cancel",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":4,"method":"tasks/cancel","params":{"id":"363422be"}}"#,
    ),
    case(
        "A2A tasks/resubscribe",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":5,"method":"tasks/resubscribe","params":{"id":"363422be"}}"#,
    ),
    case(
        "A2A v1 SendMessage",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":6,"method":"SendMessage","params":{"message":{"role":"ROLE_USER","parts":[{"text":"hi"}],"messageId":"m"}}}"#,
    ),
    case(
        "A2A task result",
        JsonRpc,
        NoEv,
        &[NearMissA2a],
        r#"{"jsonrpc":"2.0","id":1,"result":{"id":"363422be","contextId":"c295ea44","status":{"state":"completed"},"artifacts":[{"artifactId":"a","name":"joke","parts":[{"kind":"text","text":"Why..."}]}],"history":[],"kind":"task","metadata":{}}}"#,
    ),
    case(
        "A2A agent card",
        Json,
        NoEv,
        &[NearMissA2a],
        r#"{"protocolVersion":"0.3.0","name":"GeoSpatial Route Planner Agent","url":"https://georoute-agent.example.com/a2a/v1","version":"1.2.0","capabilities":{"streaming":true},"defaultInputModes":["application/json"],"defaultOutputModes":["application/json"],"skills":[{"id":"route-optimizer","name":"Route Optimizer","tags":["maps"]}]}"#,
    ),
    case(
        "Ethereum request",
        JsonRpc,
        NoEv,
        &[NearMissEthereum],
        r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#,
    ),
    case(
        "Ethereum batch",
        JsonRpc,
        NoEv,
        &[NearMissEthereum],
        r#"[{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x407d73d8a49eeb85d32cf465507dd71d507100c1","latest"],"id":1},{"jsonrpc":"2.0","method":"net_version","params":[],"id":2},{"jsonrpc":"2.0","method":"web3_clientVersion","params":[],"id":3}]"#,
    ),
    case(
        "Ethereum response",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"jsonrpc":"2.0","id":1,"result":"0x4b7"}"#,
    ),
    case(
        "Bitcoin 1.0",
        JsonRpc,
        NoEv,
        &[NearMissBitcoin],
        r#"{"jsonrpc": "1.0", "id": "curltest", "method": "getblockchaininfo", "params": []}"#,
    ),
    case(
        "Bitcoin unversioned",
        JsonRpc,
        NoEv,
        &[NearMissBitcoin],
        r#"{"id":"x","method":"getblockcount","params":[]}"#,
    ),
    case(
        "Bitcoin response",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"result":812345,"error":null,"id":"curltest"}"#,
    ),
    case(
        "aria2",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"jsonrpc":"2.0","method":"aria2.addUri","id":"1","params":[["http://example.org/file"],{"dir":"/tmp"}]}"#,
    ),
    case(
        "Kodi",
        JsonRpc,
        NoEv,
        &[JsonRpcOther],
        r#"{"jsonrpc":"2.0","method":"Player.GetActivePlayers","id":1}"#,
    ),
    case(
        "OpenAI chat tools",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{}}}}]}"#,
    ),
    case(
        "OpenAI chat tool_calls",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]}"#,
    ),
    case(
        "OpenAI Responses function_call",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"id":"resp_1","object":"response","output":[{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{}"}]}"#,
    ),
    case(
        "Anthropic tools",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],"messages":[{"role":"user","content":"weather?"}]}"#,
    ),
    case(
        "Anthropic tool_use",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"SF"}}],"stop_reason":"tool_use"}"#,
    ),
    case(
        "OpenAI chat stream delta",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
    ),
    case(
        "Anthropic stream tool_use",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
    ),
    case(
        "Gemini",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f","parameters":{}}]}]}"#,
    ),
    case(
        "Gemini functionCall",
        Json,
        NoEv,
        &[NearMissLlmToolCalling],
        r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}}]}}]}"#,
    ),
    case(
        "Jupyter",
        Json,
        NoEv,
        &[],
        r#"{"header":{"msg_id":"1","msg_type":"execute_request","session":"s","username":"u","version":"5.3"},"parent_header":{},"metadata":{},"content":{"code":"1+1"},"channel":"shell"}"#,
    ),
];

/// Provider-side MCP: the LLM vendor talks MCP, the wire shows an LLM API body
/// (mcp-facts.md §d.7).
const PROVIDER_MCP: &[Case] = &[
    case(
        "Anthropic mcp_servers",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"claude-sonnet-4-5","max_tokens":1000,"messages":[{"role":"user","content":"What tools do you have available?"}],"mcp_servers":[{"type":"url","url":"https://example-server.modelcontextprotocol.io/sse","name":"example-mcp","authorization_token":"YOUR_TOKEN"}]}"#,
    ),
    case(
        "Anthropic mcp_toolset",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"m","mcp_servers":[{"type":"url","url":"https://mcp.example.com/mcp","name":"ex"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"ex"}],"messages":[]}"#,
    ),
    case(
        "OpenAI Responses mcp tool",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"gpt-5","tools":[{"type":"mcp","server_label":"deepwiki","server_url":"https://mcp.deepwiki.com/mcp","require_approval":"never"}],"input":"What transport protocols does the MCP spec support?"}"#,
    ),
    case(
        "OpenAI connector",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"gpt-5","tools":[{"type":"mcp","server_label":"Dropbox","connector_id":"connector_dropbox","authorization":"tok"}],"input":"x"}"#,
    ),
    case(
        "Anthropic mcp_tool_use",
        Json,
        Strong,
        &[ProviderMcpActivity],
        r#"{"type":"message","role":"assistant","content":[{"type":"mcp_tool_use","id":"mcptoolu_1","name":"echo","server_name":"example-mcp","input":{"param1":"value1"}},{"type":"mcp_tool_result","tool_use_id":"mcptoolu_1","is_error":false,"content":[{"type":"text","text":"Hello"}]}]}"#,
    ),
    case(
        "OpenAI mcp_call",
        Json,
        Strong,
        &[ProviderMcpActivity],
        r#"{"object":"response","output":[{"type":"mcp_list_tools","server_label":"deepwiki","tools":[{"name":"ask_question","input_schema":{}}]},{"type":"mcp_call","id":"mcp_1","name":"ask_question","server_label":"deepwiki","arguments":"{\"repoName\":\"modelcontextprotocol/modelcontextprotocol\"}","output":"..."}]}"#,
    ),
    case(
        "OpenAI tunnel",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"gpt-5","tools":[{"type":"mcp","server_label":"local","tunnel_id":"tun_123"}],"input":"x"}"#,
    ),
    case(
        "OpenAI mcp tool without location",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"model":"gpt-5","tools":[{"type":"mcp","server_label":"x"}]}"#,
    ),
    case(
        "OpenAI stream response.created",
        Json,
        Strong,
        &[ProviderMcpServer],
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","tools":[{"type":"mcp","server_label":"dw","server_url":"https://mcp.deepwiki.com/mcp"}],"output":[]}}"#,
    ),
    case(
        "OpenAI stream output_item mcp_call",
        Json,
        Strong,
        &[ProviderMcpActivity],
        r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"mcp_call","id":"mcp_1","name":"ask_question","server_label":"dw","arguments":""}}"#,
    ),
    case(
        "OpenAI stream mcp event",
        Json,
        Strong,
        &[ProviderMcpActivity],
        r#"{"type":"response.mcp_call_arguments.delta","output_index":0,"item_id":"mcp_1","delta":"{"}"#,
    ),
    case(
        "Anthropic stream mcp_tool_use",
        Json,
        Strong,
        &[ProviderMcpActivity],
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"mcp_tool_use","id":"mcptoolu_1","name":"echo","server_name":"example-mcp","input":{}}}"#,
    ),
    case(
        "provider + plain tools",
        Json,
        Strong,
        &[ProviderMcpServer, NearMissLlmToolCalling],
        r#"{"model":"gpt-5","tools":[{"type":"function","name":"f","parameters":{}},{"type":"mcp","server_label":"s","server_url":"https://internal-tools.company.com/api/assistant"}]}"#,
    ),
];

/// Same meaning, different bytes (mcp-facts.md §a.8 evasions), plus what a
/// real MCP server would still accept.
const EVASIONS: &[Case] = &[
    case("whitespace", JsonRpc, Strong, &[McpMethod, ToolCall],
        "{\n  \"jsonrpc\"      :\n\n\n      \"2.0\",\t\"id\":1,\r\n \"method\"          :            \"tools/call\" , \"params\":{\"name\":\"x\"}\n}\n"),
    case("escaped slash", JsonRpc, Strong, &[McpMethod, ToolCall], r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"x"}}"#),
    case("unicode escapes", JsonRpc, Strong, &[McpMethod, ToolCall], r#"{"jsonrpc":"2.0","id":1,"\u006dethod":"\u0074ools\u002fcall","params":{"n\u0061me":"x"}}"#),
    case("escaped version", JsonRpc, Strong, &[InitializeParams], r#"{"jsonrpc":"2\u002e0","id":1,"method":"initialize","params":{"protocolVersion":"\u0032025-06-18","clientInfo":{"name":"c"}}}"#),
    case("BOM and whitespace", JsonRpc, Strong, &[McpMethod], "\u{feff}  \r\n\t{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n\n  "),
    case("duplicate key, last wins", JsonRpc, Strong, &[McpMethod], r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"resources/list"}"#),
    case("LSP keys added to MCP initialize", JsonRpc, Strong, &[InitializeParams, NearMissLsp],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":1,"rootUri":null,"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#),
    case("non-date protocolVersion", JsonRpc, Strong, &[InitializeParams],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"latest","capabilities":{},"clientInfo":{"name":"c"}}}"#),
    case("no jsonrpc member", JsonRpc, Weak, &[McpMethod, NonStandardFraming], r#"{"method":"tools/list","params":{},"id":1}"#),
    case("jsonrpc 1.0", JsonRpc, Weak, &[McpMethod, ToolCall, NonStandardFraming], r#"{"jsonrpc":"1.0","method":"tools/call","params":{"name":"x"},"id":1}"#),
    case("NDJSON", JsonRpc, Strong, &[McpMethod, ToolCall, AmbiguousMethod],
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n"),
    case("mixed batch", JsonRpc, Strong, &[McpMethod, NearMissLsp], r#"[{"jsonrpc":"2.0","method":"textDocument/didSave","params":{}},{"jsonrpc":"2.0","id":1,"method":"prompts/list"}]"#),
];

const NOT_JSON_RPC: &[Case] = &[
    case("empty", NotJson, NoEv, &[], ""),
    case("whitespace", NotJson, NoEv, &[], " \r\n\t "),
    case("text", NotJson, NoEv, &[], "method=tools/call&jsonrpc=2.0"),
    case(
        "html",
        NotJson,
        NoEv,
        &[],
        "<html><body>tools/call</body></html>",
    ),
    case("broken object", NotJson, NoEv, &[], "{tools/call}"),
    case("plain JSON", Json, NoEv, &[], r#"{"method":"tools/call"}"#),
    case("JSON scalar", Json, NoEv, &[], r#""tools/call""#),
    case("JSON array", Json, NoEv, &[], "[1,2,3]"),
    case("empty batch", Json, NoEv, &[], "[]"),
    case(
        "jsonrpc without method/result",
        Json,
        NoEv,
        &[],
        r#"{"jsonrpc":"2.0","id":1}"#,
    ),
    case(
        "method not a string",
        Json,
        NoEv,
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
    ),
];

#[test]
fn mcp_messages_from_every_era() {
    run(MCP_ERAS);
}

#[test]
fn mcp_methods_and_results() {
    run(MCP_METHODS_AND_RESULTS);
}

#[test]
fn near_misses_are_not_mcp() {
    run(NEAR_MISSES);
}

#[test]
fn provider_side_mcp() {
    run(PROVIDER_MCP);
}

#[test]
fn evasions_still_detected() {
    run(EVASIONS);
}

#[test]
fn non_json_rpc_bodies() {
    run(NOT_JSON_RPC);
}

fn a(body: &str) -> Analysis {
    analyze(body.as_bytes(), &Limits::default())
}

#[test]
fn every_mcp_method_in_the_table_is_classified() {
    for info in shadowmcp_jsonrpc::MCP_METHODS {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{}","params":{{"taskId":"t"}}}}"#,
            info.name
        );
        let r = a(&body);
        assert_eq!(r.methods, [info.name]);
        let want = if info.name == "initialize"
            || matches!(info.class, shadowmcp_jsonrpc::MethodClass::Shared)
        {
            Weak
        } else {
            Strong
        };
        assert_eq!(r.evidence, want, "{}", info.name);
    }
}

#[test]
fn extracts_initialize_details() {
    let r = a(MCP_ERAS[5].body);
    assert_eq!(r.protocol_version.as_deref(), Some("2025-06-18"));
    assert_eq!(
        r.client_info,
        Some(Implementation {
            name: "ExampleClient".into(),
            version: Some("1.0.0".into()),
            title: Some("Example Client Display Name".into()),
        })
    );
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].role, Role::Request);
    assert_eq!(r.messages[0].method.as_deref(), Some("initialize"));
    assert_eq!(r.messages[0].id, Some(Id::Number(1.into())));

    let r = a(MCP_ERAS[6].body);
    assert_eq!(
        r.server_info.as_ref().map(|s| s.name.as_str()),
        Some("ExampleServer")
    );
    assert_eq!(r.messages[0].role, Role::Response);
    assert_eq!(r.client_info, None);

    // ACP's clientInfo is not an MCP client.
    assert_eq!(a(NEAR_MISSES[7].body).client_info, None);
}

#[test]
fn extracts_2026_meta() {
    let r = a(MCP_ERAS[16].body);
    assert_eq!(r.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(r.client_info.map(|c| c.name), Some("ExampleClient".into()));
    let r = a(MCP_ERAS[17].body);
    assert_eq!(
        r.server_info.map(|c| (c.name, c.version)),
        Some(("weather".into(), Some("3.1.0".into())))
    );
}

#[test]
fn extracts_tool_calls_and_lists() {
    let r = a(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}"#,
    );
    assert_eq!(r.tools_called.len(), 1);
    assert_eq!(r.tools_called[0].name, "read_file");
    assert_eq!(
        r.tools_called[0].arguments,
        Some(serde_json::json!({"path":"/etc/passwd"}))
    );
    let r = a(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"noargs"}}"#);
    assert_eq!(r.tools_called[0].arguments, None);
    let r = a(MCP_METHODS_AND_RESULTS[10].body);
    assert_eq!(r.tools_listed, ["get_weather", "search"]);
    // Provider-side MCP.
    let r = a(PROVIDER_MCP[5].body);
    assert_eq!(r.tools_listed, ["ask_question"]);
    assert_eq!(r.tools_called[0].name, "ask_question");
    assert_eq!(
        r.tools_called[0].arguments,
        Some(serde_json::json!({"repoName":"modelcontextprotocol/modelcontextprotocol"}))
    );
    let r = a(PROVIDER_MCP[4].body);
    assert_eq!(
        r.tools_called[0].arguments,
        Some(serde_json::json!({"param1":"value1"}))
    );
    // Plain LLM tool calls are not MCP tool calls.
    assert!(a(NEAR_MISSES[32].body).tools_called.is_empty());
}

#[test]
fn extracts_provider_servers_and_task_ids() {
    assert_eq!(
        a(PROVIDER_MCP[0].body).provider_mcp_servers,
        ["https://example-server.modelcontextprotocol.io/sse"]
    );
    assert_eq!(
        a(PROVIDER_MCP[2].body).provider_mcp_servers,
        ["https://mcp.deepwiki.com/mcp"]
    );
    assert_eq!(
        a(PROVIDER_MCP[3].body).provider_mcp_servers,
        ["connector:connector_dropbox"]
    );
    assert_eq!(
        a(MCP_ERAS[10].body).task_ids,
        ["786512e2-9e0d-44bd-8f29-789f320fe840"]
    );
    assert_eq!(a(MCP_ERAS[14].body).task_ids, ["t-2"]);
    assert!(
        a(NEAR_MISSES[14].body).task_ids.is_empty(),
        "A2A ids are not MCP task ids"
    );
}

#[test]
fn method_after_10_kib_of_params() {
    let pad = "x".repeat(10 * 1024);
    let body = format!(
        r#"{{"params":{{"_meta":{{"pad":"{pad}"}},"arguments":{{"q":[{pad:?}]}},"name":"search"}},"id":1,"jsonrpc":"2.0","method":"tools/call"}}"#
    );
    let r = a(&body);
    assert_eq!(
        (r.evidence, r.methods.as_slice()),
        (Strong, &["tools/call".to_string()][..])
    );
    assert_eq!(r.tools_called[0].name, "search");
}

#[test]
fn truncated_bodies() {
    let full = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}"#;
    // Cut by the caller's body cap.
    let r = a(&full[..70]);
    assert_eq!(r.kind, JsonRpc);
    assert_eq!(r.evidence, Strong);
    assert_eq!(r.signals, [McpMethod, RecoveredParse]);
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("EOF")),
        "{:?}",
        r.error
    );
    assert!(
        !r.truncated,
        "the body itself was short, not cut by max_bytes"
    );
    // Cut by our own max_bytes.
    let limits = Limits {
        max_bytes: 90,
        ..Limits::default()
    };
    let r = analyze(full.as_bytes(), &limits);
    assert!(r.truncated);
    assert_eq!(r.tools_called.len(), 1, "name complete, arguments cut");
    assert_eq!(r.tools_called[0].arguments, Some(serde_json::json!({})));
    // Cut inside the method name: no guess.
    let r = a(&full[..40]);
    assert_eq!((r.kind, r.evidence), (Json, NoEv));
    assert!(r.methods.is_empty());
    // A truncated batch keeps its complete messages.
    let batch = r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/li"#;
    let r = a(batch);
    assert!(r.batch);
    assert_eq!(r.methods, ["notifications/initialized"]);
    assert_eq!(r.skipped, 1, "the cut element is counted");
    // Nothing usable.
    let r = a("{\"jsonr");
    assert_eq!((r.kind, r.evidence), (NotJson, NoEv));
    assert!(r.error.is_some());
}

#[test]
fn deep_nesting_does_not_overflow() {
    let open = "[".repeat(10_000);
    let r = a(&open);
    assert_eq!(r.evidence, NoEv);
    assert!(r.error.is_some());
    let closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = a(&closed);
    assert_eq!(r.kind, Json);
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("recursion")),
        "{:?}",
        r.error
    );
    let objects = "{\"a\":".repeat(50_000);
    let _ = a(&objects);
    // MCP with a deeply nested argument: the method still counts.
    let deep_args = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{}1{}}}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    let r = a(&deep_args);
    assert_eq!(r.evidence, Strong);
    assert_eq!(r.signals, [McpMethod, ToolCall, RecoveredParse]);
    // 10,000 levels of params before the method: the subtree is skipped, the
    // method after it still read.
    let deep_first = format!(
        r#"{{"params":{{"a":{}{}}},"jsonrpc":"2.0","id":1,"method":"tools/list"}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let r = a(&deep_first);
    assert_eq!(
        (r.evidence, r.methods.as_slice()),
        (Strong, &["tools/list".to_string()][..])
    );
    // A configured depth below serde_json's.
    let limits = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let r = analyze(deep_args.as_bytes(), &limits);
    assert_eq!(r.tools_called[0].name, "x");
    assert_eq!(r.tools_called[0].arguments, Some(serde_json::Value::Null));
    let r = analyze(
        MCP_ERAS[5].body.as_bytes(),
        &Limits {
            max_depth: 3,
            ..Limits::default()
        },
    );
    assert_eq!(
        r.signals,
        [InitializeParams, RecoveredParse],
        "depth 3 is enough for initialize"
    );
}

#[test]
fn big_and_odd_ids() {
    let r = a(r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list"}"#);
    assert_eq!(r.evidence, Strong);
    assert!(matches!(r.messages[0].id, Some(Id::Number(_))));
    let r = a(r#"{"jsonrpc":"2.0","id":"abc","method":"tools/list"}"#);
    assert_eq!(r.messages[0].id, Some(Id::String("abc".into())));
    let r = a(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#);
    assert_eq!(
        (r.messages[0].role, r.messages[0].id.clone()),
        (Role::Error, Some(Id::Null))
    );
    let r = a(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}"#);
    assert_eq!(r.messages[0].id, None);
    let r = a(r#"{"jsonrpc":"2.0","id":1e400,"method":"tools/list"}"#);
    assert_eq!(
        r.methods,
        ["tools/list"],
        "out-of-range number recovered as null"
    );
}

#[test]
fn roles() {
    let roles = |s: &str| a(s).messages.iter().map(|m| m.role).collect::<Vec<_>>();
    assert_eq!(
        roles(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}]"#
        ),
        [
            Role::Request,
            Role::Notification,
            Role::Response,
            Role::Error
        ]
    );
    assert_eq!(
        roles(r#"{"method":"getblockcount","params":[],"id":null}"#),
        [Role::Notification]
    );
}

#[test]
fn batch_cap_counts_skipped() {
    let batch = format!(
        "[{}]",
        [r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#; 5].join(",")
    );
    let r = analyze(
        batch.as_bytes(),
        &Limits {
            max_messages: 2,
            ..Limits::default()
        },
    );
    assert_eq!((r.messages.len(), r.skipped), (2, 3));
    let r = a(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},42,"x",{"a":1}]"#);
    assert_eq!((r.messages.len(), r.skipped, r.batch), (1, 3, true));
}

#[test]
fn sse_bodies() {
    let stream = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-03-26\",\r\ndata: \"capabilities\":{},\"serverInfo\":{\"name\":\"s\",\"version\":\"1\"}}}\r\n\r\n: keep-alive\r\n\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\n";
    let r = a(stream);
    assert!(r.sse);
    assert_eq!(r.kind, JsonRpc);
    assert_eq!(r.evidence, Strong);
    assert_eq!(r.signals, [McpMethod, InitializeResult]);
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.protocol_version.as_deref(), Some("2025-03-26"));

    let legacy =
        "event: endpoint\ndata: /messages/?session_id=9f8e7d6c5b4a39281706f5e4d3c2b1a0\n\n";
    let r = a(legacy);
    assert_eq!(
        (r.kind, r.evidence, r.signals.as_slice()),
        (NotJson, Strong, &[SseEndpoint][..])
    );
    let r = a("event: endpoint\ndata: /upload\n\n");
    assert_eq!(r.evidence, NoEv);

    // A stream cut mid-event still yields what it holds.
    let r = a("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\"}}");
    assert_eq!(r.tools_called[0].name, "a");

    // Event-at-a-time API, as a stream parser delivers events.
    let r = analyze_sse_event(
        None,
        MCP_METHODS_AND_RESULTS[11].body.as_bytes(),
        &Limits::default(),
    );
    assert_eq!((r.sse, r.signals.as_slice()), (true, &[ToolResult][..]));
    let r = analyze_sse_event(Some("message"), b"", &Limits::default());
    assert_eq!((r.kind, r.evidence), (NotJson, NoEv));
    // Too many events.
    let many = "data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n".repeat(5);
    let r = analyze(
        many.as_bytes(),
        &Limits {
            max_messages: 3,
            ..Limits::default()
        },
    );
    assert_eq!((r.messages.len(), r.skipped), (3, 2));
}

#[test]
fn merge_request_response_and_events() {
    let mut session = a(MCP_ERAS[0].body);
    merge(&mut session, a(MCP_ERAS[1].body));
    merge(
        &mut session,
        a(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t"}}"#),
    );
    merge(
        &mut session,
        a("event: endpoint\ndata: /messages?sessionId=abc\n\n"),
    );
    merge(&mut session, a("not json"));
    assert_eq!(session.kind, JsonRpc);
    assert_eq!(session.evidence, Strong);
    assert_eq!(
        session.signals,
        [
            McpMethod,
            InitializeParams,
            InitializeResult,
            ToolCall,
            SseEndpoint
        ]
    );
    assert_eq!(session.methods, ["initialize", "tools/call"]);
    assert_eq!(session.messages.len(), 3);
    assert!(session.sse);
    assert_eq!(
        session.client_info.as_ref().map(|c| c.name.as_str()),
        Some("claude-ai")
    );
    assert_eq!(
        session.server_info.as_ref().map(|c| c.name.as_str()),
        Some("example-servers/everything")
    );

    // Lists stay capped across merges.
    let mut capped = Analysis::new(&Limits {
        max_messages: 2,
        ..Limits::default()
    });
    for _ in 0..5 {
        capped.merge(analyze(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &Limits {
                max_messages: 2,
                ..Limits::default()
            },
        ));
    }
    assert_eq!((capped.messages.len(), capped.skipped), (2, 3));

    // Merging into a default accumulator is the identity.
    let mut acc = Analysis::default();
    let one = a(MCP_ERAS[18].body);
    acc.merge(one.clone());
    assert_eq!(acc, one);
}

#[test]
fn is_mcp_and_has() {
    let r = a(MCP_ERAS[0].body);
    assert!(r.is_mcp(Strong) && r.is_mcp(Weak) && !r.is_mcp(NoEv));
    assert!(r.has(InitializeParams) && !r.has(McpMethod));
    let r = a(NEAR_MISSES[0].body);
    assert!(!r.is_mcp(Weak));
}

#[test]
fn invalid_utf8_in_a_string_is_recovered() {
    // Node body parsers decode with U+FFFD and accept; so must we.
    let body = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"q\":\"\xff\xfe\"}}}";
    let r = analyze(body, &Limits::default());
    assert_eq!((r.kind, r.evidence), (JsonRpc, Strong));
    assert_eq!(r.signals, [McpMethod, ToolCall, RecoveredParse]);
    assert_eq!(
        r.tools_called[0].arguments,
        Some(serde_json::json!({"q":"\u{FFFD}\u{FFFD}"}))
    );
    assert!(r.error.is_some());
}
