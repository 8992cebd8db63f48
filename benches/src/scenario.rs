//! What each generated flow says: background web traffic, MCP sessions of
//! every transport, and near-miss decoys. Bodies follow the shapes of the
//! captures in `fixtures/pcap/real`, `fixtures/pcap/mcp` and
//! `fixtures/pcap/decoys`.

use crate::http::{self, Framing};
use crate::rng::Rng;

/// One request and the server's answer, as raw bytes (either may be empty:
/// WebSocket messages flow one way at a time).
#[derive(Clone, Debug, Default)]
pub struct Turn {
    pub request: Vec<u8>,
    pub response: Vec<u8>,
}

/// Builds one turn's bytes when the flow gets to it, so thousands of
/// concurrent flows do not hold their bodies all at once.
pub type TurnFn = Box<dyn FnOnce(&mut Rng) -> Turn + Send>;

/// One TCP connection to generate.
pub struct FlowPlan {
    /// Scenario name (written to the labels file).
    pub kind: &'static str,
    pub mcp: bool,
    /// Host name of the server (Host header without port).
    pub host: String,
    pub port: u16,
    /// For MCP flows: the MCP server, `host[:port]/path` (port only when
    /// not the scheme default).
    pub server: Option<String>,
    /// HTTP exchanges the flow carries (a WebSocket upgrade is one).
    pub exchanges: u32,
    /// Approximate payload bytes in both directions, for the size budget.
    pub estimate: u64,
    /// In order.
    pub turns: Vec<TurnFn>,
}

impl FlowPlan {
    fn new(kind: &'static str, host: &str, port: u16) -> FlowPlan {
        FlowPlan {
            kind,
            mcp: false,
            host: host.to_string(),
            port,
            server: None,
            exchanges: 0,
            estimate: 0,
            turns: Vec::new(),
        }
    }

    fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn mcp_server(mut self, path: &str) -> FlowPlan {
        self.mcp = true;
        self.server = Some(format!("{}{}", self.host_header(), path));
        self
    }

    fn push(&mut self, exchanges: u32, estimate: usize, turn: TurnFn) {
        self.exchanges += exchanges;
        self.estimate += estimate as u64 + 300;
        self.turns.push(turn);
    }
}

/// Shares of the mix, in flows per thousand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub mcp_per_mille: u64,
    pub decoy_per_mille: u64,
}

impl Default for Mix {
    /// 5 % MCP flows, 5 % decoys.
    fn default() -> Mix {
        Mix {
            mcp_per_mille: 50,
            decoy_per_mille: 50,
        }
    }
}

/// Every MCP scenario, in the order the generator cycles through them.
pub const MCP_KINDS: &[&str] = &[
    "mcp-streamable-json",
    "mcp-streamable-sse",
    "mcp-legacy-sse",
    "mcp-stateless-2026",
    "mcp-websocket",
    "mcp-provider-anthropic",
];

/// Every decoy scenario.
pub const DECOY_KINDS: &[&str] = &[
    "decoy-ethereum-jsonrpc",
    "decoy-lsp-initialize",
    "decoy-a2a",
    "decoy-openai-tools",
    "decoy-docs-page",
    "decoy-rest-on-mcp-host",
    "decoy-sse-ticker",
];

/// The next flow(s): one plan, or two for legacy SSE (stream + POSTs).
pub fn next_flows(rng: &mut Rng, mix: Mix) -> Vec<FlowPlan> {
    let r = rng.below(1000);
    if r < mix.mcp_per_mille {
        let kind = *rng.pick(MCP_KINDS);
        mcp(rng, kind)
    } else if r < mix.mcp_per_mille + mix.decoy_per_mille {
        let kind = *rng.pick(DECOY_KINDS);
        vec![decoy(rng, kind)]
    } else {
        let r = rng.below(100);
        vec![if r < 45 {
            web_page(rng)
        } else if r < 85 {
            json_api(rng)
        } else {
            download(rng)
        }]
    }
}

const SITES: &[&str] = &[
    "www.northwind.example",
    "news.fabrikam.example",
    "intranet.adatum.example",
    "shop.contoso.example",
    "wiki.tailspin.example",
];

fn web_page(rng: &mut Rng) -> FlowPlan {
    let host = rng.pick(SITES).to_string();
    let mut plan = FlowPlan::new("web-page", &host, 80);
    let hh = plan.host_header();
    let page_len = rng.size(8 << 10, 60 << 10);
    let gzip = rng.chance(300);
    let page = format!("/articles/{}", rng.below(1_000_000));
    let h = hh.clone();
    plan.push(
        1,
        page_len / if gzip { 3 } else { 1 },
        Box::new(move |rng| {
            let req = http::request("GET", &page, &h, BROWSER, b"");
            let body = http::html_page(rng, "Weekly status", page_len);
            let resp = if gzip {
                http::response(
                    200,
                    "OK",
                    &[
                        ("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Encoding", "gzip"),
                        ("Vary", "Accept-Encoding"),
                    ],
                    &http::gzip(&body),
                    Framing::Chunked,
                    rng,
                )
            } else {
                http::response(
                    200,
                    "OK",
                    &[("Content-Type", "text/html; charset=utf-8")],
                    &body,
                    Framing::ContentLength,
                    rng,
                )
            };
            Turn {
                request: req,
                response: resp,
            }
        }),
    );
    for _ in 0..rng.range(1, 4) {
        let len = rng.size(2 << 10, 30 << 10);
        let js = rng.chance(500);
        let target = format!("/static/{}.{}", rng.hex(10), if js { "js" } else { "css" });
        let h = hh.clone();
        plan.push(
            1,
            len,
            Box::new(move |rng| {
                let mut body = Vec::with_capacity(len);
                while body.len() < len {
                    if js {
                        body.extend_from_slice(b"function render(el){el.textContent='");
                    } else {
                        body.extend_from_slice(b".card{margin:0 auto;padding:4px}/* ");
                    }
                    http::prose(rng, &mut body, 60);
                    body.extend_from_slice(if js { b"';}\n" } else { b" */\n" });
                }
                let ct = if js {
                    "application/javascript"
                } else {
                    "text/css"
                };
                Turn {
                    request: http::request("GET", &target, &h, BROWSER, b""),
                    response: http::response(
                        200,
                        "OK",
                        &[("Content-Type", ct), ("Cache-Control", "max-age=86400")],
                        &body,
                        Framing::ContentLength,
                        rng,
                    ),
                }
            }),
        );
    }
    plan
}

const BROWSER: &[(&str, &str)] = &[
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Connection", "keep-alive"),
];

const API_HOSTS: &[&str] = &[
    "api.contoso.example",
    "orders.fabrikam.example",
    "crm.adatum.example",
];

fn json_api(rng: &mut Rng) -> FlowPlan {
    let host = rng.pick(API_HOSTS).to_string();
    let port = *rng.pick(&[80, 80, 8080]);
    let mut plan = FlowPlan::new("json-api", &host, port);
    for _ in 0..rng.range(2, 8) {
        let h = plan.host_header();
        let post = rng.chance(300);
        let len = rng.size(300, 16 << 10);
        let chunked = rng.chance(250);
        let target = if post {
            "/api/v1/orders".to_string()
        } else {
            format!("/api/v1/items?page={}&limit=50", rng.below(400))
        };
        plan.push(
            1,
            len,
            Box::new(move |rng| {
                let hdrs: &[(&str, &str)] = &[
                    ("User-Agent", "okhttp/4.12.0"),
                    ("Accept", "application/json"),
                    ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.bench.token"),
                    ("Content-Type", "application/json"),
                ];
                let req_len = rng.size(200, 2000);
                let req_body = if post {
                    http::json_items(rng, req_len)
                } else {
                    Vec::new()
                };
                let body = http::json_items(rng, len);
                let framing = if chunked {
                    Framing::Chunked
                } else {
                    Framing::ContentLength
                };
                Turn {
                    request: http::request(
                        if post { "POST" } else { "GET" },
                        &target,
                        &h,
                        if post { hdrs } else { &hdrs[..3] },
                        &req_body,
                    ),
                    response: http::response(
                        if post { 201 } else { 200 },
                        if post { "Created" } else { "OK" },
                        &[("Content-Type", "application/json")],
                        &body,
                        framing,
                        rng,
                    ),
                }
            }),
        );
    }
    plan
}

fn download(rng: &mut Rng) -> FlowPlan {
    let mut plan = FlowPlan::new("download", "downloads.tailspin.example", 80);
    let h = plan.host_header();
    // Roughly log-uniform between 64 KiB and 2 MiB.
    let len = (64usize << 10) << rng.below(6);
    let len = rng.size(len, len * 2).min(2 << 20);
    let variant = rng.below(3);
    let estimate = if variant == 0 { len / 4 } else { len };
    plan.push(
        1,
        estimate,
        Box::new(move |rng| {
            let (target, resp) = match variant {
                0 => {
                    let csv = http::csv(rng, len);
                    let hdrs = [("Content-Type", "text/csv"), ("Content-Encoding", "gzip")];
                    (
                        "/exports/sales-2026.csv",
                        http::response(200, "OK", &hdrs, &http::gzip(&csv), Framing::Chunked, rng),
                    )
                }
                1 => {
                    let bin = http::binary(rng, len);
                    (
                        "/files/build-artifacts.tar.xz",
                        http::response(
                            200,
                            "OK",
                            &[("Content-Type", "application/x-xz")],
                            &bin,
                            Framing::Chunked,
                            rng,
                        ),
                    )
                }
                _ => {
                    let bin = http::binary(rng, len);
                    (
                        "/files/installer.zip",
                        http::response(
                            200,
                            "OK",
                            &[("Content-Type", "application/zip")],
                            &bin,
                            Framing::ContentLength,
                            rng,
                        ),
                    )
                }
            };
            Turn {
                request: http::request("GET", target, &h, BROWSER, b""),
                response: resp,
            }
        }),
    );
    plan
}

const MCP_HOSTS: &[(&str, u16, &str)] = &[
    ("mcp.shadow-vendor.example", 80, "/mcp"),
    ("tools.acme-ai.example", 8080, "/api/mcp"),
    ("agent-gw.internal.example", 3000, "/mcp"),
];

const TOOLS_LIST: &str = r#"{"tools":[{"name":"get_issue_status","description":"Return the workflow status of an issue in the tracker.","inputSchema":{"type":"object","properties":{"issue_id":{"title":"Issue Id","type":"string"}},"required":["issue_id"]}},{"name":"search_docs","description":"Search the vendor documentation.","inputSchema":{"type":"object","properties":{"query":{"type":"string"},"limit":{"type":"integer","default":5}},"required":["query"]}}]}"#;

/// The JSON-RPC messages of one session: (request, response or None for a
/// notification). `version` goes into `initialize`.
fn mcp_session(rng: &mut Rng, version: &str) -> Vec<(String, Option<String>)> {
    let mut msgs = vec![
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{"roots":{{"listChanged":true}}}},"clientInfo":{{"name":"shadow-agent","version":"0.9.3"}}}}}}"#
            ),
            Some(format!(
                r#"{{"jsonrpc":"2.0","id":0,"result":{{"protocolVersion":"{version}","capabilities":{{"tools":{{"listChanged":false}},"resources":{{"subscribe":false,"listChanged":false}}}},"serverInfo":{{"name":"shadow-vendor-tools","version":"1.30.0"}},"instructions":"Issue tracker tools."}}}}"#
            )),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#.to_string(),
            Some(format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{TOOLS_LIST}}}"#
            )),
        ),
    ];
    for i in 0..rng.range(1, 3) {
        let id = 2 + i;
        let issue = rng.range(1000, 9999);
        msgs.push((
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"get_issue_status","arguments":{{"issue_id":"SV-{issue}"}}}}}}"#),
            Some(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"SV-{issue}: In Progress (assignee: j.doe)"}}],"isError":false}}}}"#)),
        ));
    }
    msgs
}

fn sse_event(data: &str) -> Vec<u8> {
    format!("event: message\r\ndata: {data}\r\n\r\n").into_bytes()
}

fn mcp(rng: &mut Rng, kind: &'static str) -> Vec<FlowPlan> {
    let (host, port, path) = *rng.pick(MCP_HOSTS);
    match kind {
        "mcp-streamable-json" | "mcp-streamable-sse" => {
            let sse = kind == "mcp-streamable-sse";
            let mut plan = FlowPlan::new(kind, host, port).mcp_server(path);
            let session = rng.hex(32);
            for (i, (req, resp)) in mcp_session(rng, "2025-06-18").into_iter().enumerate() {
                let h = plan.host_header();
                let session = session.clone();
                let est = req.len() + resp.as_ref().map_or(0, String::len);
                plan.push(
                    1,
                    est,
                    Box::new(move |rng| {
                        let mut hdrs = vec![
                            ("User-Agent", "python-httpx/0.28.1"),
                            ("Accept", "application/json, text/event-stream"),
                            ("Content-Type", "application/json"),
                        ];
                        if i > 0 {
                            hdrs.push(("mcp-session-id", &session));
                            hdrs.push(("mcp-protocol-version", "2025-06-18"));
                        }
                        let response = match resp {
                            None => http::response(202, "Accepted", &[], b"", Framing::ContentLength, rng),
                            Some(r) if sse => http::chunked_pieces(
                                &format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache, no-transform\r\nmcp-session-id: {session}\r\nTransfer-Encoding: chunked\r\n\r\n"),
                                &[sse_event(&r)],
                                true,
                            ),
                            Some(r) => http::response(200, "OK", &[("content-type", "application/json"), ("mcp-session-id", &session)], r.as_bytes(), Framing::ContentLength, rng),
                        };
                        Turn { request: http::request("POST", path, &h, &hdrs, req.as_bytes()), response }
                    }),
                );
            }
            vec![plan]
        }
        "mcp-legacy-sse" => {
            let sse_path = if path == "/mcp" {
                "/sse".to_string()
            } else {
                format!("{path}/sse")
            };
            let session = rng.hex(32);
            let msgs = mcp_session(rng, "2024-11-05");
            let mut stream = FlowPlan::new(kind, host, port).mcp_server(&sse_path);
            let h = stream.host_header();
            let mut events =
                vec![
                    format!("event: endpoint\r\ndata: /messages/?session_id={session}\r\n\r\n")
                        .into_bytes(),
                ];
            events.extend(msgs.iter().filter_map(|(_, r)| r.as_deref().map(sse_event)));
            let est = events.iter().map(Vec::len).sum();
            let target = sse_path.clone();
            stream.push(
                1,
                est,
                Box::new(move |_| Turn {
                    request: http::request("GET", &target, &h, &[("User-Agent", "python-httpx/0.28.1"), ("Accept", "text/event-stream"), ("Cache-Control", "no-store")], b""),
                    response: http::chunked_pieces(
                        "HTTP/1.1 200 OK\r\ncache-control: no-store\r\nx-accel-buffering: no\r\ncontent-type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n",
                        &events,
                        true,
                    ),
                }),
            );
            // The POSTs go to the endpoint the stream announced.
            let mut posts =
                FlowPlan::new("mcp-legacy-sse-post", host, port).mcp_server("/messages");
            for (req, _) in msgs {
                let h = posts.host_header();
                let target = format!("/messages/?session_id={session}");
                let est = req.len();
                posts.push(
                    1,
                    est,
                    Box::new(move |rng| Turn {
                        request: http::request(
                            "POST",
                            &target,
                            &h,
                            &[
                                ("User-Agent", "python-httpx/0.28.1"),
                                ("Accept", "*/*"),
                                ("Content-Type", "application/json"),
                            ],
                            req.as_bytes(),
                        ),
                        response: http::response(
                            202,
                            "Accepted",
                            &[],
                            b"Accepted",
                            Framing::ContentLength,
                            rng,
                        ),
                    }),
                );
            }
            vec![stream, posts]
        }
        "mcp-stateless-2026" => {
            let mut plan = FlowPlan::new(kind, host, port).mcp_server(path);
            let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"shadow-agent","version":"0.9.3"},"io.modelcontextprotocol/clientCapabilities":{}}"#;
            let mut calls = vec![
                ("server/discover", None, format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#),
                 r#"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","capabilities":{"tools":{"listChanged":true}},"resultType":"complete","supportedVersions":["2026-07-28"],"ttlMs":0,"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"shadow-vendor-issues","version":"2.4.1"}}}}"#.to_string()),
                ("tools/list", None, format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{meta}}}}}"#),
                 format!(r#"{{"jsonrpc":"2.0","id":2,"result":{TOOLS_LIST}}}"#)),
            ];
            for i in 0..rng.range(1, 3) {
                let id = 3 + i;
                calls.push(("tools/call", Some("search_docs"),
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"search_docs","arguments":{{"query":"token rotation"}},{meta}}}}}"#),
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"3 pages match 'token rotation'"}}],"isError":false,"resultType":"complete"}}}}"#)));
            }
            for (method, name, req, resp) in calls {
                let h = plan.host_header();
                plan.push(
                    1,
                    req.len() + resp.len(),
                    Box::new(move |rng| {
                        let mut hdrs = vec![
                            ("User-Agent", "python-httpx2/2.16.2"),
                            ("accept", "application/json, text/event-stream"),
                            ("content-type", "application/json"),
                            ("mcp-protocol-version", "2026-07-28"),
                            ("mcp-method", method),
                        ];
                        if let Some(n) = name {
                            hdrs.push(("mcp-name", n));
                        }
                        Turn {
                            request: http::request("POST", path, &h, &hdrs, req.as_bytes()),
                            response: http::response(
                                200,
                                "OK",
                                &[("content-type", "application/json")],
                                resp.as_bytes(),
                                Framing::ContentLength,
                                rng,
                            ),
                        }
                    }),
                );
            }
            vec![plan]
        }
        "mcp-websocket" => {
            let ws_path = "/ws";
            let mut plan = FlowPlan::new(kind, host, port).mcp_server(ws_path);
            let h = plan.host_header();
            plan.push(
                1,
                400,
                Box::new(move |rng| {
                    let key = rng.hex(22);
                    Turn {
                        request: http::request("GET", ws_path, &h, &[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", &format!("{key}==")), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", "mcp"), ("User-Agent", "mcp-ws-client/1.0 websockets/17")], b""),
                        response: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ZIffhz5GNwHJDnEIqFH4xYZIYvg=\r\nSec-WebSocket-Protocol: mcp\r\n\r\n".to_vec(),
                    }
                }),
            );
            for (req, resp) in mcp_session(rng, "2025-06-18") {
                let est = req.len() + resp.as_ref().map_or(0, String::len);
                plan.push(
                    0,
                    est,
                    Box::new(move |rng| Turn {
                        request: http::ws_text_frame(rng, req.as_bytes(), true),
                        response: resp
                            .map(|r| http::ws_text_frame(rng, r.as_bytes(), false))
                            .unwrap_or_default(),
                    }),
                );
            }
            vec![plan]
        }
        _ => {
            // Provider-side MCP: the agent asks the LLM provider to connect
            // to an MCP server; the flow goes to the provider's API host and
            // the server is the one named in the body.
            let mut plan = FlowPlan::new("mcp-provider-anthropic", "api.anthropic.com", 80);
            plan.mcp = true;
            let server_url = format!("https://{host}{path}");
            plan.server = Some(format!("{host}{path}"));
            let h = plan.host_header();
            for _ in 0..rng.range(1, 2) {
                let h = h.clone();
                let server_url = server_url.clone();
                plan.push(
                    1,
                    1500,
                    Box::new(move |rng| {
                        let issue = rng.range(1000, 9999);
                        let body = format!(r#"{{"max_tokens":1000,"messages":[{{"role":"user","content":"What is the status of SV-{issue}?"}}],"model":"claude-sonnet-4-5","mcp_servers":[{{"type":"url","url":"{server_url}","name":"shadow-vendor","authorization_token":"sv_pat_3f9a0c7e1b2d4f6a"}}]}}"#);
                        let resp = format!(r#"{{"id":"msg_01{}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"mcp_tool_use","id":"mcptoolu_01{}","name":"get_issue_status","server_name":"shadow-vendor","input":{{"issue_id":"SV-{issue}"}}}},{{"type":"text","text":"SV-{issue} is in progress."}}],"stop_reason":"end_turn","usage":{{"input_tokens":1210,"output_tokens":96}}}}"#, rng.hex(20), rng.hex(20));
                        Turn {
                            request: http::request("POST", "/v1/messages", &h, &[("User-Agent", "Anthropic/Python 2.14.0"), ("Accept", "application/json"), ("Content-Type", "application/json"), ("anthropic-version", "2023-06-01"), ("anthropic-beta", "mcp-client-2025-04-04"), ("x-api-key", "sk-ant-api03-bench-not-a-real-key")], body.as_bytes()),
                            response: http::response(200, "OK", &[("content-type", "application/json"), ("request-id", "req_011CSHpMcpBench")], resp.as_bytes(), Framing::ContentLength, rng),
                        }
                    }),
                );
            }
            vec![plan]
        }
    }
}

/// A POST of `req` with a JSON response, as a turn.
fn json_post(
    plan: &mut FlowPlan,
    target: &'static str,
    ua: &'static str,
    req: String,
    resp: String,
) {
    let h = plan.host_header();
    plan.push(
        1,
        req.len() + resp.len(),
        Box::new(move |rng| Turn {
            request: http::request(
                "POST",
                target,
                &h,
                &[
                    ("User-Agent", ua),
                    ("Accept", "application/json"),
                    ("Content-Type", "application/json"),
                ],
                req.as_bytes(),
            ),
            response: http::response(
                200,
                "OK",
                &[("content-type", "application/json")],
                resp.as_bytes(),
                Framing::ContentLength,
                rng,
            ),
        }),
    );
}

fn decoy(rng: &mut Rng, kind: &'static str) -> FlowPlan {
    match kind {
        "decoy-ethereum-jsonrpc" => {
            let mut plan = FlowPlan::new(kind, "rpc.eth-node.example", 8545);
            for id in 1..=rng.range(2, 5) {
                let (req, resp) = match id % 3 {
                    0 => (
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_blockNumber","params":[]}}"#
                        ),
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"result":"0x{}"}}"#,
                            rng.hex(7)
                        ),
                    ),
                    1 => (
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_getBalance","params":["0x{}","latest"]}}"#,
                            rng.hex(40)
                        ),
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"result":"0x{}"}}"#,
                            rng.hex(15)
                        ),
                    ),
                    _ => (
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_call","params":[{{"to":"0x{}","data":"0x70a08231"}},"latest"]}}"#,
                            rng.hex(40)
                        ),
                        format!(
                            r#"{{"jsonrpc":"2.0","id":{id},"result":"0x{}"}}"#,
                            rng.hex(64)
                        ),
                    ),
                };
                json_post(&mut plan, "/", "web3.py/7.6.0", req, resp);
            }
            plan
        }
        "decoy-lsp-initialize" => {
            let mut plan = FlowPlan::new(kind, "lsp.devbox.example", 80);
            json_post(&mut plan, "/lsp", "monaco-languageclient/9.0.0",
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"processId":{},"rootUri":"file:///workspace/app","capabilities":{{"textDocument":{{"hover":{{"contentFormat":["markdown"]}},"completion":{{"completionItem":{{"snippetSupport":true}}}}}},"workspace":{{"workspaceFolders":true}}}},"clientInfo":{{"name":"Monaco","version":"0.52.0"}}}}}}"#, rng.range(1000, 60000)),
                r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"textDocumentSync":2,"hoverProvider":true,"completionProvider":{"triggerCharacters":["."]}},"serverInfo":{"name":"pyright","version":"1.1.390"}}}"#.to_string());
            json_post(&mut plan, "/lsp", "monaco-languageclient/9.0.0",
                r#"{"jsonrpc":"2.0","id":2,"method":"textDocument/hover","params":{"textDocument":{"uri":"file:///workspace/app/main.py"},"position":{"line":10,"character":4}}}"#.to_string(),
                r#"{"jsonrpc":"2.0","id":2,"result":{"contents":{"kind":"markdown","value":"def main() -> None"}}}"#.to_string());
            plan
        }
        "decoy-a2a" => {
            let mut plan = FlowPlan::new(kind, "agents.partner.example", 80);
            let h = plan.host_header();
            plan.push(1, 600, Box::new(move |rng| Turn {
                request: http::request("GET", "/.well-known/agent-card.json", &h, &[("User-Agent", "a2a-python/0.3.4")], b""),
                response: http::response(200, "OK", &[("content-type", "application/json")], br#"{"name":"Travel Agent","description":"Books trips","url":"http://agents.partner.example/a2a/v1","version":"1.0.0","protocolVersion":"0.3.0","capabilities":{"streaming":true},"defaultInputModes":["text/plain"],"defaultOutputModes":["text/plain"],"skills":[{"id":"book","name":"Book travel","description":"Books flights","tags":["travel"]}]}"#, Framing::ContentLength, rng),
            }));
            let mid = rng.hex(12);
            json_post(
                &mut plan,
                "/a2a/v1",
                "a2a-python/0.3.4",
                format!(
                    r#"{{"jsonrpc":"2.0","id":"{mid}","method":"message/send","params":{{"message":{{"role":"user","parts":[{{"kind":"text","text":"Book a flight to Oslo"}}],"messageId":"{mid}","kind":"message"}}}}}}"#
                ),
                format!(
                    r#"{{"jsonrpc":"2.0","id":"{mid}","result":{{"id":"task-{mid}","contextId":"ctx-1","status":{{"state":"completed"}},"kind":"task"}}}}"#
                ),
            );
            plan
        }
        "decoy-openai-tools" => {
            let mut plan = FlowPlan::new(kind, "api.openai.com", 80);
            json_post(&mut plan, "/v1/chat/completions", "OpenAI/Python 1.58.1",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto"}"#.to_string(),
                format!(r#"{{"id":"chatcmpl-{}","object":"chat.completion","model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_{}","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Oslo\"}}"}}}}]}},"finish_reason":"tool_calls"}}]}}"#, rng.hex(24), rng.hex(24)));
            plan
        }
        "decoy-docs-page" => {
            let mut plan = FlowPlan::new(kind, "docs.devtools.example", 80);
            let h = plan.host_header();
            plan.push(1, 12_000, Box::new(move |rng| {
                let mut body = br#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Building MCP servers - Example Docs</title></head>
<body><main class="docs"><h1>Building MCP servers: a quickstart</h1>
<p>A client opens a session with <code>initialize</code>:</p>
<pre><code class="language-json">{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "example-client", "version": "1.0.0"}}}</code></pre>
<p>and then calls a tool:</p>
<pre><code class="language-json">{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"}}}</code></pre>
<p>"#.to_vec();
                http::prose(rng, &mut body, 10_000);
                body.extend_from_slice(b"</p></main></body></html>\n");
                Turn {
                    request: http::request("GET", "/guides/building-mcp-servers.html", &h, BROWSER, b""),
                    response: http::response(200, "OK", &[("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "public, max-age=600")], &body, Framing::ContentLength, rng),
                }
            }));
            plan
        }
        "decoy-rest-on-mcp-host" => {
            let mut plan = FlowPlan::new(kind, "mcp.monitoring.example", 80);
            let h = plan.host_header();
            plan.push(
                1,
                300,
                Box::new(move |rng| Turn {
                    request: http::request(
                        "GET",
                        "/v1/status",
                        &h,
                        &[
                            ("User-Agent", "python-httpx/0.28.1"),
                            ("Accept", "application/json"),
                            ("Authorization", "Bearer st_live_fixture_4f2a9c"),
                        ],
                        b"",
                    ),
                    response: http::response(
                        200,
                        "OK",
                        &[("content-type", "application/json")],
                        br#"{"status":"ok","uptime_s":86400,"probes":{"db":"ok","queue":"ok"}}"#,
                        Framing::ContentLength,
                        rng,
                    ),
                }),
            );
            json_post(&mut plan, "/v1/items", "python-httpx/0.28.1",
                r#"{"name":"probe-eu-west","interval_s":30,"targets":["db","queue"]}"#.to_string(),
                r#"{"id":42,"name":"probe-eu-west","interval_s":30,"targets":["db","queue"],"created_at":"2026-11-29T07:25:03Z"}"#.to_string());
            plan
        }
        _ => {
            let mut plan = FlowPlan::new("decoy-sse-ticker", "quotes.markets.example", 80);
            let h = plan.host_header();
            let n = rng.size(5, 40);
            plan.push(1, n * 80, Box::new(move |rng| {
                let mut events = Vec::new();
                for i in 0..n {
                    if i % 10 == 9 {
                        events.push(b"event: heartbeat\r\ndata: {}\r\n\r\n".to_vec());
                    } else {
                        let sym = rng.pick(&["ACME", "GLOBX", "INITECH"]);
                        events.push(format!("event: quote\r\ndata: {{\"symbol\":\"{sym}\",\"price\":{}.{:02},\"ts\":{}}}\r\n\r\n", rng.range(10, 900), rng.below(100), 1_795_000_000 + i).into_bytes());
                    }
                }
                Turn {
                    request: http::request("GET", "/sse?symbols=ACME,GLOBX,INITECH", &h, &[("User-Agent", "curl/7.88.1"), ("Accept", "text/event-stream")], b""),
                    response: http::chunked_pieces("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n", &events, true),
                }
            }));
            plan
        }
    }
}
