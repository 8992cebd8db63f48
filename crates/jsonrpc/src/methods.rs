//! Method-name tables: MCP methods per spec era, and the method names of the
//! JSON-RPC protocols that look like MCP at a glance.
//!
//! To add a method, add one row; nothing else needs to change.

/// Bit flags naming the MCP spec eras (the `protocolVersion` strings) a method
/// belongs to.
pub mod era {
    /// `2024-11-05`: stdio + HTTP with SSE.
    pub const V2024_11_05: u8 = 1 << 0;
    /// `2025-03-26`: Streamable HTTP, batching.
    pub const V2025_03_26: u8 = 1 << 1;
    /// `2025-06-18`: elicitation, no batching.
    pub const V2025_06_18: u8 = 1 << 2;
    /// `2025-11-25`: experimental tasks.
    pub const V2025_11_25: u8 = 1 << 3;
    /// `2026-07-28`: stateless MCP (no `initialize`, `server/discover`).
    pub const V2026_07_28: u8 = 1 << 4;
    /// The eras with a session handshake (`initialize`).
    pub const SESSION: u8 = V2024_11_05 | V2025_03_26 | V2025_06_18 | V2025_11_25;
    /// Every published era.
    pub const ALL: u8 = SESSION | V2026_07_28;

    /// `(protocolVersion, bit)` for every era, oldest first.
    pub const NAMES: &[(&str, u8)] = &[
        ("2024-11-05", V2024_11_05),
        ("2025-03-26", V2025_03_26),
        ("2025-06-18", V2025_06_18),
        ("2025-11-25", V2025_11_25),
        ("2026-07-28", V2026_07_28),
    ];

    /// The era bit of a `protocolVersion` string, if it names a published era.
    pub fn from_version(version: &str) -> Option<u8> {
        NAMES
            .iter()
            .find(|(name, _)| *name == version)
            .map(|(_, bit)| *bit)
    }
}

impl MethodInfo {
    /// Whether the method exists in the era named by `version`
    /// (`None` for an unknown version).
    pub fn in_version(&self, version: &str) -> Option<bool> {
        era::from_version(version).map(|bit| self.eras & bit != 0)
    }
}

/// How much a method name alone says about MCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodClass {
    /// Only MCP uses this name (e.g. `tools/call`): strong evidence when
    /// framed as JSON-RPC 2.0.
    McpOnly,
    /// `initialize`: shared with LSP and ACP; the params decide.
    Initialize,
    /// Generic name also used elsewhere (`ping`, `notifications/progress`).
    Shared,
    /// `tasks/get|list|cancel`: shared with A2A ≤ 0.3; MCP sends
    /// `params.taskId`, A2A sends `params.id`.
    TaskShared,
}

/// One row of the MCP method table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodInfo {
    pub name: &'static str,
    /// Eras (bits of [`era`]) whose `schema.ts` lists the method.
    pub eras: u8,
    pub class: MethodClass,
}

const fn m(name: &'static str, eras: u8, class: MethodClass) -> MethodInfo {
    MethodInfo { name, eras, class }
}

use era::*;
use MethodClass::*;

const E_1106_1125: u8 = SESSION;
const E_0618_ON: u8 = V2025_06_18 | V2025_11_25;
const E_1125_ON: u8 = V2025_11_25 | V2026_07_28;

/// Every MCP method, from the `ClientRequest`/`ServerRequest`/`*Notification`
/// unions of `schema/<era>/schema.ts` in
/// github.com/modelcontextprotocol/modelcontextprotocol (mcp-facts.md §c.1).
pub const MCP_METHODS: &[MethodInfo] = &[
    // Lifecycle (removed in 2026-07-28, which uses `server/discover`).
    m("initialize", E_1106_1125, Initialize),
    m("notifications/initialized", E_1106_1125, McpOnly),
    m("ping", E_1106_1125, Shared),
    m("server/discover", V2026_07_28, McpOnly),
    // Utilities.
    m("notifications/cancelled", ALL, Shared),
    m("notifications/progress", ALL, Shared),
    m("notifications/message", ALL, McpOnly),
    m("logging/setLevel", E_1106_1125, McpOnly),
    m("completion/complete", ALL, McpOnly),
    // Tools.
    m("tools/list", ALL, McpOnly),
    m("tools/call", ALL, McpOnly),
    m("notifications/tools/list_changed", ALL, McpOnly),
    // Resources.
    m("resources/list", ALL, McpOnly),
    m("resources/templates/list", ALL, McpOnly),
    m("resources/read", ALL, McpOnly),
    m("resources/subscribe", E_1106_1125, McpOnly),
    m("resources/unsubscribe", E_1106_1125, McpOnly),
    m("notifications/resources/updated", ALL, McpOnly),
    m("notifications/resources/list_changed", ALL, McpOnly),
    m("subscriptions/listen", V2026_07_28, McpOnly),
    m(
        "notifications/subscriptions/acknowledged",
        V2026_07_28,
        McpOnly,
    ),
    // Prompts.
    m("prompts/list", ALL, McpOnly),
    m("prompts/get", ALL, McpOnly),
    m("notifications/prompts/list_changed", ALL, McpOnly),
    // Client features (server → client requests; 2026 moved them into
    // `inputRequests` of an `input_required` result).
    m("sampling/createMessage", E_1106_1125, McpOnly),
    m("roots/list", E_1106_1125, McpOnly),
    m("notifications/roots/list_changed", E_1106_1125, McpOnly),
    m("elicitation/create", E_0618_ON, McpOnly),
    m("notifications/elicitation/complete", V2025_11_25, McpOnly),
    // Tasks (2025-11-25; an extension in 2026-07-28).
    m("tasks/get", E_1125_ON, TaskShared),
    m("tasks/list", V2025_11_25, TaskShared),
    m("tasks/cancel", E_1125_ON, TaskShared),
    m("tasks/result", V2025_11_25, McpOnly),
    m("tasks/update", V2026_07_28, McpOnly),
    m("notifications/tasks/status", V2025_11_25, McpOnly),
];

/// The MCP table row for `name`, if MCP defines it in any era.
pub fn lookup_method(name: &str) -> Option<&'static MethodInfo> {
    MCP_METHODS.iter().find(|info| info.name == name)
}

/// A JSON-RPC protocol that is not MCP but can look like it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearMiss {
    Lsp,
    Acp,
    A2a,
    Ethereum,
    Bitcoin,
}

/// A method-name pattern of a near-miss protocol.
#[derive(Clone, Copy, Debug)]
pub enum Pattern {
    Exact(&'static str),
    Prefix(&'static str),
}

impl Pattern {
    fn matches(self, name: &str) -> bool {
        match self {
            Pattern::Exact(p) => name == p,
            Pattern::Prefix(p) => name.starts_with(p),
        }
    }
}

use Pattern::{Exact, Prefix};

/// Method names of near-miss protocols (mcp-facts.md §d). `initialize` and
/// the shared `tasks/*` names are not here: their params decide.
pub const NEAR_MISS_METHODS: &[(NearMiss, Pattern)] = &[
    // LSP 3.17 (microsoft/language-server-protocol, _specifications/lsp/3.17).
    (NearMiss::Lsp, Exact("initialized")),
    (NearMiss::Lsp, Exact("shutdown")),
    (NearMiss::Lsp, Exact("exit")),
    (NearMiss::Lsp, Prefix("textDocument/")),
    (NearMiss::Lsp, Prefix("workspace/")),
    (NearMiss::Lsp, Prefix("window/")),
    (NearMiss::Lsp, Prefix("client/")),
    (NearMiss::Lsp, Prefix("notebookDocument/")),
    (NearMiss::Lsp, Prefix("telemetry/")),
    (NearMiss::Lsp, Prefix("callHierarchy/")),
    (NearMiss::Lsp, Prefix("typeHierarchy/")),
    (NearMiss::Lsp, Prefix("completionItem/")),
    (NearMiss::Lsp, Prefix("codeLens/")),
    (NearMiss::Lsp, Prefix("codeAction/")),
    (NearMiss::Lsp, Prefix("documentLink/")),
    (NearMiss::Lsp, Prefix("inlayHint/")),
    (NearMiss::Lsp, Prefix("workspaceSymbol/")),
    (NearMiss::Lsp, Prefix("$/")),
    // ACP (agentclientprotocol.com/protocol).
    (NearMiss::Acp, Prefix("session/")),
    (NearMiss::Acp, Prefix("fs/")),
    (NearMiss::Acp, Prefix("terminal/")),
    (NearMiss::Acp, Exact("authenticate")),
    // A2A v0.2/v0.3 and v1.0 (a2aproject/A2A docs/specification.md).
    (NearMiss::A2a, Exact("message/send")),
    (NearMiss::A2a, Exact("message/stream")),
    (NearMiss::A2a, Exact("tasks/resubscribe")),
    (NearMiss::A2a, Prefix("tasks/pushNotificationConfig/")),
    (NearMiss::A2a, Exact("agent/getAuthenticatedExtendedCard")),
    (NearMiss::A2a, Exact("SendMessage")),
    (NearMiss::A2a, Exact("SendStreamingMessage")),
    (NearMiss::A2a, Exact("GetTask")),
    (NearMiss::A2a, Exact("ListTasks")),
    (NearMiss::A2a, Exact("CancelTask")),
    (NearMiss::A2a, Exact("SubscribeToTask")),
    (NearMiss::A2a, Exact("GetExtendedAgentCard")),
    (NearMiss::A2a, Exact("CreateTaskPushNotificationConfig")),
    (NearMiss::A2a, Exact("GetTaskPushNotificationConfig")),
    (NearMiss::A2a, Exact("ListTaskPushNotificationConfigs")),
    (NearMiss::A2a, Exact("DeleteTaskPushNotificationConfig")),
    // Ethereum JSON-RPC namespaces (docs.base.org, docs.goldsky.com).
    (NearMiss::Ethereum, Prefix("eth_")),
    (NearMiss::Ethereum, Prefix("net_")),
    (NearMiss::Ethereum, Prefix("web3_")),
    (NearMiss::Ethereum, Prefix("wallet_")),
    (NearMiss::Ethereum, Prefix("personal_")),
    (NearMiss::Ethereum, Prefix("debug_")),
    (NearMiss::Ethereum, Prefix("trace_")),
    (NearMiss::Ethereum, Prefix("txpool_")),
    (NearMiss::Ethereum, Prefix("engine_")),
    // Bitcoin Core RPC: flat lowercase names (rdrr.io/cran/rbtc).
    (NearMiss::Bitcoin, Exact("getblockchaininfo")),
    (NearMiss::Bitcoin, Exact("getblockcount")),
    (NearMiss::Bitcoin, Exact("getbestblockhash")),
    (NearMiss::Bitcoin, Exact("getblock")),
    (NearMiss::Bitcoin, Exact("getblockhash")),
    (NearMiss::Bitcoin, Exact("getblockheader")),
    (NearMiss::Bitcoin, Exact("getdifficulty")),
    (NearMiss::Bitcoin, Exact("getmempoolinfo")),
    (NearMiss::Bitcoin, Exact("getrawmempool")),
    (NearMiss::Bitcoin, Exact("getrawtransaction")),
    (NearMiss::Bitcoin, Exact("decoderawtransaction")),
    (NearMiss::Bitcoin, Exact("sendrawtransaction")),
    (NearMiss::Bitcoin, Exact("gettxout")),
    (NearMiss::Bitcoin, Exact("getnetworkinfo")),
    (NearMiss::Bitcoin, Exact("getpeerinfo")),
    (NearMiss::Bitcoin, Exact("getconnectioncount")),
    (NearMiss::Bitcoin, Exact("getmininginfo")),
    (NearMiss::Bitcoin, Exact("getwalletinfo")),
    (NearMiss::Bitcoin, Exact("getbalance")),
    (NearMiss::Bitcoin, Exact("getnewaddress")),
    (NearMiss::Bitcoin, Exact("listunspent")),
    (NearMiss::Bitcoin, Exact("sendtoaddress")),
    (NearMiss::Bitcoin, Exact("estimatesmartfee")),
    (NearMiss::Bitcoin, Exact("validateaddress")),
];

/// The near-miss protocol whose method table contains `name`.
pub fn near_miss_method(name: &str) -> Option<NearMiss> {
    NEAR_MISS_METHODS
        .iter()
        .find(|(_, pattern)| pattern.matches(name))
        .map(|(protocol, _)| *protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_and_near_miss_tables_do_not_overlap() {
        for info in MCP_METHODS {
            assert_eq!(near_miss_method(info.name), None, "{}", info.name);
        }
    }

    #[test]
    fn mcp_names_are_unique_and_have_an_era() {
        for (i, a) in MCP_METHODS.iter().enumerate() {
            assert!(a.eras != 0 && a.eras & !era::ALL == 0, "{}", a.name);
            for b in &MCP_METHODS[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn eras_follow_the_changelogs() {
        let era_of = |n: &str| lookup_method(n).map(|i| i.eras);
        assert_eq!(era_of("initialize"), Some(era::SESSION));
        assert_eq!(era_of("server/discover"), Some(era::V2026_07_28));
        assert_eq!(
            era_of("elicitation/create").map(|e| e & era::V2025_03_26),
            Some(0)
        );
        assert_eq!(era_of("tools/call"), Some(era::ALL));
        assert_eq!(era_of("textDocument/didOpen"), None);
    }

    #[test]
    fn version_lookup() {
        assert_eq!(era::from_version("2025-06-18"), Some(era::V2025_06_18));
        assert_eq!(era::from_version("2025-06-19"), None);
        let init = lookup_method("initialize").unwrap();
        assert_eq!(init.in_version("2024-11-05"), Some(true));
        assert_eq!(init.in_version("2026-07-28"), Some(false));
        assert_eq!(init.in_version("1.0"), None);
    }

    #[test]
    fn near_miss_lookup() {
        assert_eq!(
            near_miss_method("textDocument/didOpen"),
            Some(NearMiss::Lsp)
        );
        assert_eq!(near_miss_method("$/progress"), Some(NearMiss::Lsp));
        assert_eq!(near_miss_method("session/prompt"), Some(NearMiss::Acp));
        assert_eq!(near_miss_method("message/send"), Some(NearMiss::A2a));
        assert_eq!(
            near_miss_method("eth_blockNumber"),
            Some(NearMiss::Ethereum)
        );
        assert_eq!(
            near_miss_method("getblockchaininfo"),
            Some(NearMiss::Bitcoin)
        );
        assert_eq!(near_miss_method("aria2.addUri"), None);
    }
}
