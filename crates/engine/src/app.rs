//! The application protocol of one reassembled connection, decided on its
//! first bytes: TLS (metadata always; plaintext through the HTTP parsers
//! when a key log holds the connection's secrets), HTTP/2 with prior
//! knowledge (the client preface), or HTTP/1.x.

use std::sync::Arc;

use shadowmcp_exchange::{Exchange, Flow, Origin, Record, Timestamp};
use shadowmcp_http1::{Connection as Http1Connection, Direction, ExchangeIds, Http1Config};
use shadowmcp_http2::{Connection as Http2Connection, Http2Config, PREFACE};
use shadowmcp_tls::{TlsConfig, TlsConnection, TlsEvent};

/// Parsers and limits every connection of a worker shares.
#[derive(Clone)]
pub(crate) struct AppSetup {
    pub http1: Arc<Http1Config>,
    pub http2: Arc<Http2Config>,
    pub tls: TlsConfig,
}

/// What a new connection needs to know about itself.
#[derive(Clone)]
pub(crate) struct ConnStart {
    pub flow: Flow,
    pub origin: Origin,
    pub midstream: bool,
}

pub(crate) enum AppConn {
    /// Too few first bytes to tell (a ClientHello or the HTTP/2 preface
    /// split into tiny segments): they wait here.
    Undecided(Box<Undecided>),
    /// Only while a parser is being replaced.
    Empty,
    Http1(Box<Http1Connection>),
    Http2(Box<Http2Connection>),
    Tls(Box<TlsConn>),
}

/// TLS record content types (change_cipher_spec .. application_data) and
/// major version 3: what any TLS record starts with.
fn looks_like_tls_record(first: &[u8]) -> bool {
    matches!(first, [20..=23, 3, 0..=4, ..])
}

/// The client preface, or as much of it as has arrived.
fn starts_like_preface(first: &[u8]) -> bool {
    let n = first.len().min(PREFACE.len());
    n >= 4 && PREFACE.starts_with(&first[..n])
}

/// First bytes of a connection whose protocol is not known yet.
pub(crate) struct Undecided {
    start: ConnStart,
    dir: Direction,
    ts: Timestamp,
    first: Vec<u8>,
    position: u64,
}

/// Bytes after which the protocol is always decided: the HTTP/2 preface's
/// length (a ClientHello needs 11).
const DECIDE_BYTES: usize = 24;

/// The protocol of a connection from its first bytes `first` (in `dir`);
/// `None` while they could still be the start of a ClientHello or of the
/// HTTP/2 preface, unless `force`.
fn decide(start: &ConnStart, dir: Direction, first: &[u8], force: bool) -> Option<Protocol> {
    let from_client = dir == Direction::ToServer;
    if start.midstream {
        if from_client && shadowmcp_tls::sniff_client_hello(first) == shadowmcp_tls::Sniff::Yes
            || looks_like_tls_record(first)
        {
            return Some(Protocol::Tls);
        }
        return Some(if shadowmcp_http2::looks_like_frames(first, from_client) {
            Protocol::Http2
        } else {
            Protocol::Http1
        });
    }
    if !from_client {
        return Some(if looks_like_tls_record(first) {
            Protocol::Tls
        } else {
            Protocol::Http1
        });
    }
    let waiting = first.len() < DECIDE_BYTES && !force;
    match shadowmcp_tls::sniff_client_hello(first) {
        shadowmcp_tls::Sniff::Yes => return Some(Protocol::Tls),
        shadowmcp_tls::Sniff::NeedMore if waiting => return None,
        shadowmcp_tls::Sniff::NeedMore if shadowmcp_tls::looks_like_tls_client_hello(first) => {
            return Some(Protocol::Tls)
        }
        _ => {}
    }
    if looks_like_tls_record(first) {
        return Some(Protocol::Tls);
    }
    let n = first.len().min(PREFACE.len());
    if PREFACE.starts_with(&first[..n]) {
        if n == PREFACE.len() || (!waiting && n >= 4) {
            return Some(Protocol::Http2);
        }
        if waiting {
            return None;
        }
    }
    Some(Protocol::Http1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    Tls,
}

impl AppConn {
    /// The most one connection's parser state takes, its buffers aside
    /// (TLS holds an HTTP parser of either kind).
    pub fn max_state_bytes() -> usize {
        let h1 = std::mem::size_of::<Http1Connection>();
        let h2 = std::mem::size_of::<Http2Connection>();
        let parser = h1.max(h2);
        // TLS holds its parser behind one more AppConn.
        std::mem::size_of::<AppConn>()
            + (std::mem::size_of::<TlsConn>() + std::mem::size_of::<AppConn>() + parser).max(parser)
    }

    /// The parser for a connection whose first bytes travel in `dir`;
    /// they are fed with `on_data`.
    pub fn new(start: ConnStart, dir: Direction) -> AppConn {
        let position = start.origin.position;
        AppConn::Undecided(Box::new(Undecided {
            start,
            dir,
            ts: Timestamp::default(),
            first: Vec::new(),
            position,
        }))
    }

    /// The parser for `protocol`, numbering its exchanges with `ids`.
    fn made(setup: &AppSetup, start: ConnStart, protocol: Protocol, ids: ExchangeIds) -> AppConn {
        match protocol {
            Protocol::Tls => AppConn::Tls(Box::new(TlsConn {
                tls: TlsConnection::new(setup.tls.clone()),
                inner: None,
                start,
                ids,
                events: Vec::new(),
                produced: false,
                announced: false,
                last_ts: Timestamp::default(),
            })),
            Protocol::Http2 => AppConn::Http2(Box::new(Http2Connection::new(
                start.flow,
                start.origin,
                start.midstream,
                setup.http2.clone(),
                ids,
            ))),
            Protocol::Http1 => AppConn::Http1(Box::new(Http1Connection::new(
                start.flow,
                start.origin,
                start.midstream,
                setup.http1.clone(),
                ids,
            ))),
        }
    }

    /// Decides an undecided connection's protocol (now, if `force`) and
    /// feeds the parser the bytes that waited. No-op once decided.
    fn settle(&mut self, setup: &AppSetup, force: bool, out: &mut Vec<Record>) {
        let AppConn::Undecided(u) = self else { return };
        let Some(protocol) = decide(&u.start, u.dir, &u.first, force) else {
            return;
        };
        let AppConn::Undecided(u) = std::mem::replace(self, AppConn::Empty) else {
            return;
        };
        let Undecided {
            start,
            dir,
            ts,
            first,
            position,
        } = *u;
        let ids = ExchangeIds::for_flow(start.flow.id);
        *self = AppConn::made(setup, start, protocol, ids);
        self.set_position(position);
        if !first.is_empty() {
            self.on_data(setup, dir, ts, &first, out);
        }
    }

    pub fn set_position(&mut self, position: u64) {
        match self {
            AppConn::Undecided(u) => u.position = position,
            AppConn::Http1(c) => c.set_position(position),
            AppConn::Http2(c) => c.set_position(position),
            AppConn::Tls(t) => {
                if let Some(inner) = &mut t.inner {
                    inner.set_position(position);
                }
            }
            AppConn::Empty => {}
        }
    }

    pub fn on_data(
        &mut self,
        setup: &AppSetup,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut Vec<Record>,
    ) {
        if let AppConn::Undecided(u) = self {
            if dir == u.dir {
                if u.first.is_empty() {
                    u.ts = ts;
                }
                u.first.extend_from_slice(data);
                self.settle(setup, false, out);
                return;
            }
            // The other side spoke first: decide on what there is.
            self.settle(setup, true, out);
        }
        let upgrade = match self {
            AppConn::Http1(c) => {
                c.on_data(dir, ts, data, out);
                c.take_h2c_upgrade()
            }
            AppConn::Http2(c) => {
                c.on_data(dir, ts, data, out);
                None
            }
            AppConn::Tls(t) => {
                t.on_data(setup, dir, ts, data, out);
                None
            }
            AppConn::Undecided(_) | AppConn::Empty => None,
        };
        if let Some(up) = upgrade {
            *self = AppConn::Http2(Box::new(upgraded_to_h2(setup, up, ts, out)));
        }
    }

    pub fn on_gap(&mut self, setup: &AppSetup, dir: Direction, len: u64, out: &mut Vec<Record>) {
        self.settle(setup, true, out);
        match self {
            AppConn::Http1(c) => c.on_gap(dir, len, out),
            AppConn::Http2(c) => c.on_gap(dir, len, out),
            AppConn::Tls(t) => t.on_gap(setup, dir, len, out),
            AppConn::Undecided(_) | AppConn::Empty => {}
        }
    }

    pub fn on_fin(
        &mut self,
        setup: &AppSetup,
        dir: Direction,
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) {
        self.settle(setup, true, out);
        match self {
            AppConn::Http1(c) => c.on_fin(dir, ts, out),
            AppConn::Http2(c) => c.on_fin(dir, ts, out),
            AppConn::Tls(t) => {
                if let Some(inner) = &mut t.inner {
                    let mut inner_out = Vec::new();
                    inner.on_fin(setup, dir, ts, &mut inner_out);
                    t.tag(inner_out, out);
                }
            }
            AppConn::Undecided(_) | AppConn::Empty => {}
        }
    }

    pub fn on_close(&mut self, setup: &AppSetup, ts: Timestamp, out: &mut Vec<Record>) {
        self.settle(setup, true, out);
        match self {
            AppConn::Http1(c) => c.on_close(ts, out),
            AppConn::Http2(c) => c.on_close(ts, out),
            AppConn::Tls(t) => t.on_close(setup, ts, out),
            AppConn::Undecided(_) | AppConn::Empty => {}
        }
    }

    /// HTTP/1 parser statistics (the report's `http` figures).
    pub fn http1_stats(&self) -> Option<&shadowmcp_http1::Http1Stats> {
        match self {
            AppConn::Http1(c) => Some(c.stats()),
            AppConn::Tls(t) => t.inner.as_deref().and_then(AppConn::http1_stats),
            _ => None,
        }
    }

    /// The connection's TLS state, if it is TLS.
    pub fn tls(&self) -> Option<&TlsConnection> {
        match self {
            AppConn::Tls(t) => Some(&t.tls),
            _ => None,
        }
    }

    /// Its HTTP/2 parser, directly or inside TLS.
    pub fn http2(&self) -> Option<&Http2Connection> {
        match self {
            AppConn::Http2(c) => Some(c),
            AppConn::Tls(t) => t.inner.as_deref().and_then(AppConn::http2),
            _ => None,
        }
    }
}

/// The HTTP/2 parser that takes over a connection after `Upgrade: h2c`:
/// the upgrade request is its stream 1, and what each side sent after the
/// switch is fed first.
fn upgraded_to_h2(
    setup: &AppSetup,
    up: shadowmcp_http1::H2cUpgrade,
    ts: Timestamp,
    out: &mut Vec<Record>,
) -> Http2Connection {
    let mut h2 = Http2Connection::upgraded(
        up.flow,
        up.origin,
        setup.http2.clone(),
        up.ids,
        up.request,
        up.request_ts,
    );
    if !up.client_bytes.is_empty() {
        h2.on_data(Direction::ToServer, ts, &up.client_bytes, out);
    }
    if !up.server_bytes.is_empty() {
        h2.on_data(Direction::ToClient, ts, &up.server_bytes, out);
    }
    h2
}

/// A TLS connection: the record layer, and the HTTP parser of its
/// plaintext once some is decrypted.
pub(crate) struct TlsConn {
    tls: TlsConnection,
    /// The HTTP/1 or HTTP/2 parser of the plaintext, made on its first
    /// bytes.
    inner: Option<Box<AppConn>>,
    start: ConnStart,
    ids: ExchangeIds,
    events: Vec<TlsEvent>,
    /// Plaintext reached an HTTP parser.
    produced: bool,
    /// The handshake-only record was emitted.
    announced: bool,
    last_ts: Timestamp,
}

fn tls_dir(dir: Direction) -> shadowmcp_tls::Direction {
    match dir {
        Direction::ToServer => shadowmcp_tls::Direction::ToServer,
        Direction::ToClient => shadowmcp_tls::Direction::ToClient,
    }
}

fn http_dir(dir: shadowmcp_tls::Direction) -> Direction {
    match dir {
        shadowmcp_tls::Direction::ToServer => Direction::ToServer,
        shadowmcp_tls::Direction::ToClient => Direction::ToClient,
    }
}

impl TlsConn {
    fn on_data(
        &mut self,
        setup: &AppSetup,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut Vec<Record>,
    ) {
        self.last_ts = ts;
        let mut events = std::mem::take(&mut self.events);
        self.tls.on_data(tls_dir(dir), data, &mut events);
        self.handle(setup, ts, &mut events, out);
        self.events = events;
    }

    fn on_gap(&mut self, setup: &AppSetup, dir: Direction, len: u64, out: &mut Vec<Record>) {
        let mut events = std::mem::take(&mut self.events);
        self.tls.on_gap(tls_dir(dir), len, &mut events);
        let ts = self.last_ts;
        self.handle(setup, ts, &mut events, out);
        self.events = events;
    }

    fn on_close(&mut self, setup: &AppSetup, ts: Timestamp, out: &mut Vec<Record>) {
        let mut events = std::mem::take(&mut self.events);
        self.tls.finish(&mut events);
        self.handle(setup, ts, &mut events, out);
        if let Some(inner) = &mut self.inner {
            let mut inner_out = Vec::new();
            inner.on_close(setup, ts, &mut inner_out);
            self.tag(inner_out, out);
        }
        self.announce(ts, out);
    }

    fn handle(
        &mut self,
        setup: &AppSetup,
        ts: Timestamp,
        events: &mut Vec<TlsEvent>,
        out: &mut Vec<Record>,
    ) {
        for event in events.drain(..) {
            let mut inner_out = Vec::new();
            match event {
                TlsEvent::Plaintext { dir, data } => {
                    let dir = http_dir(dir);
                    self.produced = true;
                    let inner = self.inner.get_or_insert_with(|| {
                        let h2 = self.tls.negotiated_alpn() == Some("h2")
                            || (dir == Direction::ToServer && starts_like_preface(&data));
                        let start = ConnStart {
                            midstream: false,
                            ..self.start.clone()
                        };
                        let protocol = if h2 { Protocol::Http2 } else { Protocol::Http1 };
                        // The same numbering as the handshake-only exchange.
                        Box::new(AppConn::made(setup, start, protocol, self.ids.clone()))
                    });
                    inner.on_data(setup, dir, ts, &data, &mut inner_out);
                }
                TlsEvent::Gap { dir } => {
                    if let Some(inner) = &mut self.inner {
                        inner.on_gap(setup, http_dir(dir), 1, &mut inner_out);
                    }
                }
                TlsEvent::Stopped { .. } => self.announce(ts, out),
            }
            self.tag(inner_out, out);
        }
    }

    /// Exchanges read from the plaintext carry the connection's TLS facts.
    fn tag(&self, records: Vec<Record>, out: &mut Vec<Record>) {
        let info = self.tls.metadata().to_tls_info();
        for mut record in records {
            if let Record::Exchange(ex) = &mut record {
                ex.tls = Some(info.clone());
            }
            out.push(record);
        }
    }

    /// A connection whose traffic cannot be read still says whom it went
    /// to: once its handshake was seen, one exchange with only the TLS
    /// facts (and no request or response) is emitted.
    fn announce(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        if self.announced || self.produced || self.tls.metadata().client_hello.is_none() {
            return;
        }
        self.announced = true;
        let mut ex = Exchange::new(self.ids.next_id());
        ex.origin = self.start.origin.clone();
        ex.flow = Some(self.start.flow.clone());
        ex.request_ts = Some(ts);
        ex.tls = Some(self.tls.metadata().to_tls_info());
        ex.flags.midstream = self.start.midstream;
        out.push(Record::Exchange(Box::new(ex)));
    }
}
