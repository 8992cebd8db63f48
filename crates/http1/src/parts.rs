//! The pieces an exchange record is made of, shared by the HTTP/1 and
//! HTTP/2 parsers.

use shadowmcp_exchange::{Exchange, Flags, Flow, Origin, Request, Response, Timestamp};

/// Everything an exchange record is built from, apart from the
/// connection's flow and origin.
#[derive(Debug)]
pub struct ExchangeParts {
    pub id: u64,
    pub request: Option<Request>,
    pub request_ts: Option<Timestamp>,
    pub response: Option<Response>,
    pub response_ts: Option<Timestamp>,
    pub flags: Flags,
    /// Position of the exchange in its input (`Origin::position`).
    pub position: u64,
}

impl ExchangeParts {
    /// The exchange, on the connection of `flow` read from `origin`. A
    /// response without its request is dated by the response.
    pub fn build(self, origin: &Origin, flow: &Flow) -> Box<Exchange> {
        let mut ex = Exchange::new(self.id);
        ex.origin = origin.clone();
        ex.origin.position = self.position;
        ex.flow = Some(flow.clone());
        ex.request_ts = self.request_ts.or(self.response_ts);
        ex.response_ts = self.response_ts;
        ex.request = self.request;
        ex.response = self.response;
        ex.flags = self.flags;
        Box::new(ex)
    }
}
