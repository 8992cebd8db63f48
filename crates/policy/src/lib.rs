//! Sanctioned MCP servers and the verdict for everything else.
//!
//! A [`Policy`] lists the MCP servers and portals IT sanctioned (host
//! patterns, path prefixes, and optionally the users, groups and client
//! networks allowed to use them), a mode (`monitor` records what it would
//! block, `enforce` blocks) and the action for unsanctioned MCP.
//!
//! ```
//! use shadowmcp_policy::{Policy, ServerRef, Subject, Verdict};
//! let policy = Policy::from_toml_str(r#"
//! version = 1
//! mode = "enforce"
//!
//! [[sanctioned]]
//! name = "corporate portal"
//! hosts = ["mcp-portal.corp.example", "*.mcp.corp.example"]
//! path_prefixes = ["/mcp"]
//! "#, "policy.toml").unwrap();
//!
//! let portal = ServerRef::new("MCP-Portal.corp.example:443", "/mcp/sse?x=1");
//! assert_eq!(policy.decide(&portal, &Subject::default()).verdict, Verdict::Allow);
//!
//! // Cloudflare's sample classifies by substring; a look-alike host is not the portal here.
//! let lookalike = ServerRef::new("mcp-portal.corp.example.attacker.test", "/mcp");
//! assert_eq!(policy.decide(&lookalike, &Subject::default()).verdict, Verdict::Block);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

/// The policy format version this crate reads.
pub const FORMAT_VERSION: u32 = 1;

/// `monitor` records would-block verdicts; `enforce` blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Monitor,
    Enforce,
}

/// What to do with MCP traffic to a server that is not sanctioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    #[default]
    Block,
    Allow,
}

/// The outcome for one MCP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Allow,
    /// Unsanctioned, and the policy is in monitor mode.
    WouldBlock,
    Block,
}

impl Verdict {
    /// `allow`, `would-block` or `block`, as alerts print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::WouldBlock => "would-block",
            Verdict::Block => "block",
        }
    }

    /// Suricata EVE `alert.action`: what actually happened to the traffic.
    pub fn eve_action(self) -> &'static str {
        match self {
            Verdict::Block => "blocked",
            Verdict::Allow | Verdict::WouldBlock => "allowed",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MCP server an exchange talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRef {
    /// Host name or address, lower case, without port.
    pub host: String,
    pub port: Option<u16>,
    /// Path without query or fragment.
    pub path: String,
}

impl ServerRef {
    /// From a `Host`-style authority (`h`, `h:port`, `[v6]:port`) and a
    /// request target path (a query is dropped).
    pub fn new(authority: &str, path: &str) -> ServerRef {
        let authority = authority.trim();
        let (host, port) = split_authority(authority);
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        ServerRef {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
            path: path.to_string(),
        }
    }

    /// From an absolute URL (`https://h:port/path?q`), as named in
    /// provider-side MCP declarations. `None` if it has no host.
    pub fn from_url(url: &str) -> Option<ServerRef> {
        let rest = url.split_once("://").map(|(_, r)| r)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if authority.is_empty() {
            return None;
        }
        Some(ServerRef::new(authority, &rest[end..]))
    }

    /// Canonical `host[:port]/path` used in alerts and metrics: lower-case
    /// host, the port only when given, path without query or trailing slash.
    pub fn canonical(&self) -> String {
        let path = self.path.trim_end_matches('/');
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}{path}"),
            None => format!("{host}{path}"),
        }
    }
}

fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
        return (rest, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (authority, None),
    }
}

/// Who sent the traffic, as far as the source knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    pub user: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
}

/// The decision for one MCP exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub sanctioned: bool,
    /// Name of the sanctioned entry that allowed it.
    pub matched: Option<String>,
}

/// A loaded policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: Mode,
    pub default_action: DefaultAction,
    sanctioned: Vec<Sanctioned>,
    /// user (lower case) → groups.
    user_groups: BTreeMap<String, HashSet<String>>,
}

impl Default for Policy {
    /// Monitor mode, nothing sanctioned: every MCP exchange is would-block.
    fn default() -> Policy {
        Policy {
            mode: Mode::Monitor,
            default_action: DefaultAction::Block,
            sanctioned: Vec::new(),
            user_groups: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug)]
struct Sanctioned {
    name: String,
    hosts: Vec<HostPattern>,
    path_prefixes: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    networks: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Exact(String, Option<u16>),
    /// `*.example.com`: any name below example.com, not example.com itself.
    Subdomains(String, Option<u16>),
}

impl HostPattern {
    fn parse(pattern: &str) -> Result<HostPattern, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let (host, port) = split_authority(&p);
        if port.is_none() && host.len() != p.len() && !p.starts_with('[') {
            return Err(format!("host pattern {pattern:?} has an invalid port"));
        }
        if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(format!(
                    "host pattern {pattern:?}: only a leading \"*.\" wildcard is allowed"
                ));
            }
            return Ok(HostPattern::Subdomains(suffix.to_string(), port));
        }
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "host pattern {pattern:?}: only a leading \"*.\" wildcard is allowed"
            ));
        }
        Ok(HostPattern::Exact(host.to_string(), port))
    }

    fn matches(&self, server: &ServerRef) -> bool {
        let (port_ok, host_ok) = match self {
            HostPattern::Exact(h, port) => (port, server.host == *h),
            HostPattern::Subdomains(suffix, port) => (
                port,
                server.host.len() > suffix.len() + 1
                    && server.host.ends_with(suffix.as_str())
                    && server.host.as_bytes()[server.host.len() - suffix.len() - 1] == b'.',
            ),
        };
        host_ok && port_ok.is_none_or(|p| server.port == Some(p))
    }
}

/// Segment-aware prefix: `/mcp` matches `/mcp`, `/mcp/`, `/mcp/x`, not `/mcpx`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A policy file could not be loaded.
#[derive(Debug)]
pub struct PolicyError {
    /// `file:line: what is wrong` (line omitted when unknown).
    message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: u32,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    default_action: DefaultAction,
    #[serde(default)]
    groups_file: Option<String>,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    sanctioned: Vec<RawSanctioned>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSanctioned {
    name: String,
    hosts: Vec<String>,
    #[serde(default)]
    path_prefixes: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    client_networks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    groups: BTreeMap<String, Vec<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn toml_error(name: &str, text: &str, err: toml::de::Error) -> PolicyError {
    let msg = err.message().replace('\n', " ");
    let message = match err.span() {
        Some(span) => format!("{name}:{}: {msg}", line_of(text, span.start)),
        None => format!("{name}: {msg}"),
    };
    PolicyError { message }
}

impl Policy {
    /// Reads a policy file; relative `groups_file` paths are resolved
    /// against the policy file's folder.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            message: format!("{name}: cannot read policy: {e}"),
        })?;
        Policy::parse(&text, &name, path.parent())
    }

    /// Parses policy text; `name` is used in error messages. A
    /// `groups_file` is resolved against the current directory.
    pub fn from_toml_str(text: &str, name: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, name, None)
    }

    fn parse(text: &str, name: &str, base: Option<&Path>) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| toml_error(name, text, e))?;
        let err = |what: String| PolicyError {
            message: format!("{name}: {what}"),
        };
        if raw.version != FORMAT_VERSION {
            return Err(err(format!(
                "unsupported policy version {} (this build reads version {FORMAT_VERSION})",
                raw.version
            )));
        }
        let mut policy = Policy {
            mode: raw.mode,
            default_action: raw.default_action,
            ..Policy::default()
        };
        let mut add_groups = |groups: BTreeMap<String, Vec<String>>| {
            for (group, users) in groups {
                for user in users {
                    policy
                        .user_groups
                        .entry(user.to_lowercase())
                        .or_default()
                        .insert(group.to_lowercase());
                }
            }
        };
        add_groups(raw.groups);
        if let Some(file) = raw.groups_file {
            let path = match base {
                Some(b) => b.join(&file),
                None => Path::new(&file).to_path_buf(),
            };
            let gname = path.display().to_string();
            let gtext = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read groups_file {gname}: {e}")))?;
            let groups: RawGroups =
                toml::from_str(&gtext).map_err(|e| toml_error(&gname, &gtext, e))?;
            add_groups(groups.groups);
        }
        for (i, s) in raw.sanctioned.into_iter().enumerate() {
            let what = format!("sanctioned entry {} ({:?})", i + 1, s.name);
            if s.hosts.is_empty() {
                return Err(err(format!(
                    "{what}: hosts must list at least one host pattern"
                )));
            }
            let hosts = s
                .hosts
                .iter()
                .map(|h| HostPattern::parse(h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("{what}: {e}")))?;
            for p in &s.path_prefixes {
                if !p.starts_with('/') {
                    return Err(err(format!(
                        "{what}: path prefix {p:?} must start with \"/\""
                    )));
                }
            }
            let networks = s
                .client_networks
                .iter()
                .map(|n| parse_network(n).map_err(|e| err(format!("{what}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            policy.sanctioned.push(Sanctioned {
                name: s.name,
                hosts,
                path_prefixes: s.path_prefixes,
                users: s.users.iter().map(|u| u.to_lowercase()).collect(),
                groups: s.groups.iter().map(|g| g.to_lowercase()).collect(),
                networks,
            });
        }
        Ok(policy)
    }

    /// Number of sanctioned entries.
    pub fn sanctioned_len(&self) -> usize {
        self.sanctioned.len()
    }

    /// The verdict for MCP traffic from `subject` to `server`.
    pub fn decide(&self, server: &ServerRef, subject: &Subject<'_>) -> Decision {
        for s in &self.sanctioned {
            if self.entry_matches(s, server, subject) {
                return Decision {
                    verdict: Verdict::Allow,
                    sanctioned: true,
                    matched: Some(s.name.clone()),
                };
            }
        }
        let verdict = match (self.default_action, self.mode) {
            (DefaultAction::Allow, _) => Verdict::Allow,
            (DefaultAction::Block, Mode::Monitor) => Verdict::WouldBlock,
            (DefaultAction::Block, Mode::Enforce) => Verdict::Block,
        };
        Decision {
            verdict,
            sanctioned: false,
            matched: None,
        }
    }

    fn entry_matches(&self, s: &Sanctioned, server: &ServerRef, subject: &Subject<'_>) -> bool {
        if !s.hosts.iter().any(|h| h.matches(server)) {
            return false;
        }
        if !s.path_prefixes.is_empty()
            && !s
                .path_prefixes
                .iter()
                .any(|p| path_has_prefix(&server.path, p))
        {
            return false;
        }
        if !s.networks.is_empty() {
            match subject.client_ip {
                Some(ip) if s.networks.iter().any(|n| n.contains(&ip)) => {}
                _ => return false,
            }
        }
        if s.users.is_empty() && s.groups.is_empty() {
            return true;
        }
        let Some(user) = subject.user.map(str::to_lowercase) else {
            return false;
        };
        if s.users.contains(&user) {
            return true;
        }
        self.user_groups
            .get(&user)
            .is_some_and(|groups| s.groups.iter().any(|g| groups.contains(g)))
    }

    /// Groups of a user, sorted (for alerts).
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .user_groups
            .get(&user.to_lowercase())
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn parse_network(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "client network {text:?} is not an address or CIDR block"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::from_toml_str(text, "p.toml").unwrap()
    }

    #[test]
    fn empty_policy_monitors() {
        let p = Policy::default();
        let d = p.decide(&ServerRef::new("mcp.x.test", "/mcp"), &Subject::default());
        assert_eq!(d.verdict, Verdict::WouldBlock);
        assert!(!d.sanctioned);
        assert_eq!(d.verdict.eve_action(), "allowed");
    }

    #[test]
    fn enforce_blocks_and_default_allow_allows() {
        let p = policy("version = 1\nmode = \"enforce\"\n");
        let s = ServerRef::new("mcp.x.test", "/mcp");
        assert_eq!(p.decide(&s, &Subject::default()).verdict, Verdict::Block);
        let p = policy("version = 1\nmode = \"enforce\"\ndefault_action = \"allow\"\n");
        let d = p.decide(&s, &Subject::default());
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(!d.sanctioned);
    }

    #[test]
    fn host_patterns_are_label_exact() {
        let p = policy(
            r#"version = 1
[[sanctioned]]
name = "portal"
hosts = ["portal.corp.test", "*.mcp.corp.test", "pinned.corp.test:8443"]
"#,
        );
        let ok = |h: &str| {
            p.decide(&ServerRef::new(h, "/"), &Subject::default())
                .sanctioned
        };
        assert!(ok("portal.corp.test"));
        assert!(ok("PORTAL.corp.test:443"));
        assert!(ok("portal.corp.test."));
        assert!(ok("a.mcp.corp.test"));
        assert!(ok("a.b.mcp.corp.test"));
        assert!(!ok("mcp.corp.test"));
        assert!(!ok("evilmcp.corp.test"));
        assert!(!ok("portal.corp.test.evil.test"));
        assert!(!ok("xportal.corp.test"));
        assert!(ok("pinned.corp.test:8443"));
        assert!(!ok("pinned.corp.test:443"));
        assert!(!ok("pinned.corp.test"));
    }

    #[test]
    fn path_prefixes_are_segment_aware() {
        assert!(path_has_prefix("/mcp", "/mcp"));
        assert!(path_has_prefix("/mcp/", "/mcp"));
        assert!(path_has_prefix("/mcp/sse", "/mcp/"));
        assert!(!path_has_prefix("/mcpx", "/mcp"));
        assert!(!path_has_prefix("/", "/mcp"));
        assert!(path_has_prefix("/anything", "/"));
        let p = policy(
            "version = 1\n[[sanctioned]]\nname = \"p\"\nhosts = [\"h.test\"]\npath_prefixes = [\"/mcp\"]\n",
        );
        assert!(
            p.decide(&ServerRef::new("h.test", "/mcp?x=1"), &Subject::default())
                .sanctioned
        );
        assert!(
            !p.decide(&ServerRef::new("h.test", "/mcpx"), &Subject::default())
                .sanctioned
        );
    }

    #[test]
    fn users_groups_and_networks() {
        let p = policy(
            r#"version = 1
mode = "enforce"
[groups]
eng = ["Alice", "bob"]
[[sanctioned]]
name = "eng only"
hosts = ["h.test"]
groups = ["ENG"]
[[sanctioned]]
name = "carol"
hosts = ["h.test"]
users = ["carol"]
[[sanctioned]]
name = "office"
hosts = ["office.test"]
client_networks = ["10.1.0.0/16", "2001:db8::1"]
"#,
        );
        let s = ServerRef::new("h.test", "/mcp");
        fn who(u: &str) -> Subject<'_> {
            Subject {
                user: Some(u),
                client_ip: None,
            }
        }
        assert_eq!(
            p.decide(&s, &who("alice")).matched.as_deref(),
            Some("eng only")
        );
        assert_eq!(
            p.decide(&s, &who("carol")).matched.as_deref(),
            Some("carol")
        );
        assert_eq!(p.decide(&s, &who("mallory")).verdict, Verdict::Block);
        assert_eq!(p.decide(&s, &Subject::default()).verdict, Verdict::Block);
        assert_eq!(p.groups_of("ALICE"), vec!["eng".to_string()]);

        let o = ServerRef::new("office.test", "/");
        let from = |ip: &str| Subject {
            user: None,
            client_ip: Some(ip.parse().unwrap()),
        };
        assert!(p.decide(&o, &from("10.1.2.3")).sanctioned);
        assert!(!p.decide(&o, &from("10.2.0.1")).sanctioned);
        assert!(p.decide(&o, &from("2001:db8::1")).sanctioned);
        assert!(!p.decide(&o, &Subject::default()).sanctioned);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Policy::from_toml_str("version = 1\nmode = \"loud\"\n", "p.toml").unwrap_err();
        assert!(e.to_string().starts_with("p.toml:2: "), "{e}");
        let e = Policy::from_toml_str("version = 1\nbogus = 3\n", "p.toml").unwrap_err();
        assert!(e.to_string().starts_with("p.toml:2: "), "{e}");
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Policy::from_toml_str("version = 2\n", "p.toml").unwrap_err();
        assert!(
            e.to_string().contains("unsupported policy version 2"),
            "{e}"
        );
        let e = Policy::from_toml_str(
            "version = 1\n[[sanctioned]]\nname = \"x\"\nhosts = [\"a.*.test\"]\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("wildcard"), "{e}");
        let e = Policy::from_toml_str(
            "version = 1\n[[sanctioned]]\nname = \"x\"\nhosts = [\"a.test\"]\nclient_networks = [\"10.0.0.0/40\"]\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/40"), "{e}");
    }

    #[test]
    fn server_refs() {
        let s = ServerRef::from_url("https://user@MCP.Example.test:8443/mcp/?k=v").unwrap();
        assert_eq!(s.host, "mcp.example.test");
        assert_eq!(s.port, Some(8443));
        assert_eq!(s.canonical(), "mcp.example.test:8443/mcp");
        assert_eq!(
            ServerRef::from_url("https://h.test").unwrap().canonical(),
            "h.test"
        );
        assert_eq!(
            ServerRef::new("[::1]:80", "/sse").canonical(),
            "[::1]:80/sse"
        );
        assert!(ServerRef::from_url("not a url").is_none());
    }
}
