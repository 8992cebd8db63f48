//! TLS on reassembled TCP streams: what a connection reveals without keys,
//! and its plaintext with keys.
//!
//! - [`TlsConnection`] takes the two byte streams of one TCP connection (any
//!   split, gaps reported) and parses the record layer (RFC 8446 §5, RFC
//!   5246 §6.2), reassembling handshake messages across records and
//!   segments. Without keys it yields [`TlsMeta`]: the [`ClientHello`] (SNI,
//!   ALPN offer, versions, suites, random, key shares, Encrypted Client
//!   Hello) and [`ServerHello`] (version, suite, HelloRetryRequest), which
//!   fill a [`shadowmcp_exchange::TlsInfo`].
//! - With a [`KeyLog`] (NSS key log format, from `SSLKEYLOGFILE` or a pcapng
//!   Decryption Secrets Block) it decrypts both directions into plaintext
//!   [`TlsEvent`]s:
//!   - TLS 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305:
//!     handshake keys (so the ALPN of the encrypted EncryptedExtensions is
//!     known), application keys, KeyUpdates, 0-RTT data (kept when the
//!     server accepted it, dropped when it rejected it), and application
//!     data alone when the key log lacks the handshake secrets;
//!   - TLS 1.2 AES-GCM and ChaCha20-Poly1305 suites (any key exchange:
//!     the key log gives the master secret), including renegotiation.
//!
//!   CBC and CCM suites and versions before TLS 1.2 are reported as
//!   unsupported, with their metadata still parsed.
//! - [`looks_like_tls_client_hello`] is a cheap sniff for protocol
//!   detection.
//!
//! Nothing from the wire is trusted: every length is checked, every buffer
//! is capped ([`TlsConfig`]), and problems are counted as [`IssueKind`]s in
//! [`TlsStats`], never panics. A record that fails authentication stops
//! decryption of its direction. Cryptography is `ring`'s, the provider
//! rustls uses.
//!
//! ```
//! use std::sync::Arc;
//! use shadowmcp_tls::{Direction, KeyLog, TlsConfig, TlsConnection, TlsEvent};
//! let (keylog, errors) = KeyLog::parse("# no keys for this connection\n");
//! assert!(errors.is_empty());
//! let config = TlsConfig { keylog: Some(Arc::new(keylog)), ..TlsConfig::default() };
//! let mut conn = TlsConnection::new(config);
//! let mut events = Vec::new();
//! conn.on_data(Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n", &mut events);
//! // Not TLS: the direction stops, and says why.
//! assert!(matches!(events[0], TlsEvent::Stopped { dir: Direction::ToServer, .. }));
//! ```

#![forbid(unsafe_code)]

mod conn;
mod crypto;
mod hello;
mod keylog;
mod reader;

pub use conn::{
    looks_like_tls_client_hello, sniff_client_hello, Direction, Issue, IssueKind, Sniff, TlsConfig,
    TlsConnection, TlsEvent, TlsMeta, TlsStats, MAX_RECORD_BODY,
};
pub use crypto::cipher_suite_name;
pub use hello::{ClientHello, ServerHello, TlsVersion, HELLO_RETRY_REQUEST_RANDOM};
pub use keylog::{
    DsbError, KeyLog, KeyLogConfig, KeyLogError, KeyLogErrorKind, Secret, SessionSecrets,
    DSB_TLS_KEY_LOG,
};
