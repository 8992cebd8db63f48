//! Turns flow plans into interleaved TCP packets in a pcap file.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};

use shadowmcp_capture::writer::{PcapWriter, TcpSegment};
use shadowmcp_capture::{LinkType, TcpFlags};
use shadowmcp_exchange::Timestamp;

use crate::rng::Rng;
use crate::scenario::{next_flows, FlowPlan, Mix, Turn, TurnFn};

/// What to generate. Same config (seed included) → byte-identical output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Target pcap size in bytes; no new flow starts once the flows begun
    /// are expected to fill it, so the file ends a little above or below.
    /// Default 64 MiB.
    pub size: u64,
    /// Default 1.
    pub seed: u64,
    /// Flows open at once, their packets interleaved in time. Default 200.
    pub concurrent_flows: usize,
    /// Bare SYNs from distinct spoofed sources spread through the capture
    /// (never answered, never labelled). Default 0.
    pub syn_flood: u64,
    /// Default 5 % MCP, 5 % decoys.
    pub mix: Mix,
    /// Largest TCP payload per segment. Default 1448 (1500-byte MTU with
    /// timestamps, as most captures show).
    pub mss: usize,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            size: 64 << 20,
            seed: 1,
            concurrent_flows: 200,
            syn_flood: 0,
            mix: Mix::default(),
            mss: 1448,
        }
    }
}

/// The truth about one generated flow (one TCP connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// `client_ip:port-server_ip:port`.
    pub flow: String,
    pub kind: &'static str,
    pub mcp: bool,
    /// MCP server `host[:port]/path` (for provider-side MCP: the server
    /// named in the request body).
    pub server: Option<String>,
    /// HTTP exchanges the engine should reconstruct from the flow.
    pub exchanges: u32,
}

impl Label {
    /// One JSON line (no newline).
    pub fn to_json(&self) -> String {
        let mut v = serde_json::json!({
            "flow": self.flow,
            "kind": self.kind,
            "mcp": self.mcp,
            "exchanges": self.exchanges,
        });
        if let Some(s) = &self.server {
            v["server"] = serde_json::Value::from(s.as_str());
        }
        v.to_string()
    }
}

/// Totals of one generation run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of the pcap file.
    pub bytes: u64,
    pub packets: u64,
    pub flows: u64,
    pub mcp_flows: u64,
    pub decoy_flows: u64,
    pub exchanges: u64,
    pub syn_flood_packets: u64,
    /// Largest number of flows open at once.
    pub peak_concurrent: usize,
    pub by_kind: BTreeMap<&'static str, u64>,
}

const START_SECS: u64 = 1_795_939_200; // 2026-11-29T08:00:00Z

/// Writes the capture to `pcap` and one [`Label`] JSON line per flow to
/// `labels`, in the order the flows start.
pub fn generate<P: Write, L: Write>(config: &GenConfig, pcap: P, labels: L) -> io::Result<Summary> {
    let mut out = PcapWriter::new(BufWriter::with_capacity(1 << 20, pcap), LinkType::ETHERNET)?;
    let mut labels = BufWriter::new(labels);
    let mut rng = Rng::new(config.seed);
    let mut sum = Summary {
        bytes: 24,
        ..Summary::default()
    };
    let mss = config.mss.clamp(1, 65_000);
    let mut clock_ns: u64 = START_SECS * 1_000_000_000;
    let mut pool: Vec<Flow> = Vec::new();
    let mut committed: u64 = 0;
    let mut client_ports = vec![0u16; CLIENTS as usize];
    let flood_dst = SocketAddr::new(server_ip("www.northwind.example").into(), 80);
    let concurrent = config.concurrent_flows.max(1);
    let mut flood_sent: u64 = 0;
    loop {
        while pool.len() < concurrent && committed < config.size {
            for plan in next_flows(&mut rng, config.mix) {
                // Headers, ACKs and framing add about 15 % to the payload estimate.
                committed += plan.estimate * 115 / 100 + 700;
                let flow = Flow::start(plan, &mut rng, &mut client_ports, mss, &mut sum);
                writeln!(labels, "{}", flow.label.to_json())?;
                pool.push(flow);
            }
        }
        sum.peak_concurrent = sum.peak_concurrent.max(pool.len());
        if pool.is_empty() {
            break;
        }
        let idx = rng.below(pool.len() as u64) as usize;
        match pool[idx].step() {
            Some(seg) => {
                clock_ns += rng.range(2_000, 30_000);
                write(&mut out, &mut sum, clock_ns, &seg)?;
            }
            None => {
                pool.swap_remove(idx);
            }
        }
        // Spread the flood evenly over the capture's bytes.
        let due = (u128::from(config.syn_flood) * u128::from(sum.bytes.min(config.size))
            / u128::from(config.size.max(1))) as u64;
        while flood_sent < due {
            write(
                &mut out,
                &mut sum,
                clock_ns,
                &flood_syn(flood_sent, flood_dst),
            )?;
            flood_sent += 1;
            sum.syn_flood_packets += 1;
        }
    }
    while flood_sent < config.syn_flood {
        clock_ns += 1_000;
        write(
            &mut out,
            &mut sum,
            clock_ns,
            &flood_syn(flood_sent, flood_dst),
        )?;
        flood_sent += 1;
        sum.syn_flood_packets += 1;
    }
    out.into_inner().flush()?;
    labels.flush()?;
    Ok(sum)
}

fn write<W: Write>(
    out: &mut PcapWriter<W>,
    sum: &mut Summary,
    clock_ns: u64,
    seg: &TcpSegment,
) -> io::Result<()> {
    let frame = seg.to_ethernet();
    out.write_packet(Timestamp::from_nanos(clock_ns as i64), &frame)?;
    sum.packets += 1;
    sum.bytes += 16 + frame.len() as u64;
    Ok(())
}

fn flood_syn(i: u64, dst: SocketAddr) -> TcpSegment {
    let host = (i / 50_000) as u32;
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + host);
    let port = 1024 + (i % 50_000) as u16;
    TcpSegment::new(SocketAddr::new(ip.into(), port), dst)
        .seq((i as u32).wrapping_mul(2_654_435_761))
        .flags(TcpFlags {
            syn: true,
            ..TcpFlags::default()
        })
        .window(64_240)
}

const CLIENTS: u32 = 2000;

/// 198.18.0.0/15 (benchmarking range), chosen by an FNV-1a hash of the name.
fn server_ip(host: &str) -> Ipv4Addr {
    let mut h: u32 = 0x811c_9dc5;
    for b in host.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    Ipv4Addr::new(198, 18 + (h >> 31) as u8, (h >> 8) as u8, (h as u8).max(1))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Syn,
    SynAck,
    HandshakeAck,
    Request,
    Response,
    Fin,
    FinAck,
    LastAck,
    Done,
}

struct Flow {
    label: Label,
    client: SocketAddr,
    server: SocketAddr,
    client_next: u32,
    server_next: u32,
    turns: std::vec::IntoIter<TurnFn>,
    rng: Rng,
    state: State,
    turn: Turn,
    offset: usize,
    /// Data segments not yet acknowledged by the receiver (delayed ACK:
    /// one ACK per two segments).
    unacked: u32,
    mss: usize,
}

impl Flow {
    fn start(
        plan: FlowPlan,
        rng: &mut Rng,
        client_ports: &mut [u16],
        mss: usize,
        sum: &mut Summary,
    ) -> Flow {
        let c = rng.below(u64::from(CLIENTS)) as u32;
        let client_ip = Ipv4Addr::new(10, 20, (c / 250) as u8, (c % 250 + 1) as u8);
        let slot = &mut client_ports[c as usize];
        *slot = if *slot == 0 || *slot >= 60_999 {
            32_768 + rng.below(1000) as u16
        } else {
            *slot + 1
        };
        let client = SocketAddr::new(client_ip.into(), *slot);
        let server = SocketAddr::new(server_ip(&plan.host).into(), plan.port);
        let label = Label {
            flow: format!("{client}-{server}"),
            kind: plan.kind,
            mcp: plan.mcp,
            server: plan.server.clone(),
            exchanges: plan.exchanges,
        };
        sum.flows += 1;
        sum.exchanges += u64::from(plan.exchanges);
        if plan.mcp {
            sum.mcp_flows += 1;
        } else if plan.kind.starts_with("decoy-") {
            sum.decoy_flows += 1;
        }
        *sum.by_kind.entry(plan.kind).or_default() += 1;
        Flow {
            label,
            client,
            server,
            client_next: rng.next_u32(),
            server_next: rng.next_u32(),
            turns: plan.turns.into_iter(),
            rng: rng.fork(),
            state: State::Syn,
            turn: Turn::default(),
            offset: 0,
            unacked: 0,
            mss,
        }
    }

    fn seg(&self, to_server: bool, flags: TcpFlags) -> TcpSegment {
        let (src, dst, seq, ack) = if to_server {
            (self.client, self.server, self.client_next, self.server_next)
        } else {
            (self.server, self.client, self.server_next, self.client_next)
        };
        TcpSegment::new(src, dst)
            .seq(seq)
            .ack(ack)
            .flags(flags)
            .window(if to_server { 64_256 } else { 65_160 })
    }

    fn next_turn(&mut self) {
        match self.turns.next() {
            Some(f) => {
                self.turn = f(&mut self.rng);
                self.offset = 0;
                self.state = State::Request;
            }
            None => self.state = State::Fin,
        }
    }

    /// The flow's next packet, or `None` when it is finished.
    fn step(&mut self) -> Option<TcpSegment> {
        const SYN: TcpFlags = flags(true, false, false, false);
        const SYN_ACK: TcpFlags = flags(true, true, false, false);
        const ACK: TcpFlags = flags(false, true, false, false);
        const FIN_ACK: TcpFlags = flags(false, true, true, false);
        loop {
            match self.state {
                State::Syn => {
                    let s = self.seg(true, SYN).ack(0);
                    self.client_next = self.client_next.wrapping_add(1);
                    self.state = State::SynAck;
                    return Some(s);
                }
                State::SynAck => {
                    let s = self.seg(false, SYN_ACK);
                    self.server_next = self.server_next.wrapping_add(1);
                    self.state = State::HandshakeAck;
                    return Some(s);
                }
                State::HandshakeAck => {
                    let s = self.seg(true, ACK);
                    self.next_turn();
                    return Some(s);
                }
                State::Request | State::Response => {
                    let to_server = self.state == State::Request;
                    let data = if to_server {
                        &self.turn.request
                    } else {
                        &self.turn.response
                    };
                    let remaining = data.len() - self.offset;
                    // The receiver acknowledges every second segment and the
                    // end of each message.
                    if self.unacked >= 2 || (remaining == 0 && self.unacked > 0) {
                        self.unacked = 0;
                        return Some(self.seg(!to_server, ACK));
                    }
                    if remaining == 0 {
                        if to_server {
                            self.state = State::Response;
                            self.offset = 0;
                        } else {
                            self.next_turn();
                        }
                        continue;
                    }
                    let n = remaining.min(self.mss);
                    let last = n == remaining;
                    let payload = &data[self.offset..self.offset + n];
                    let s = self
                        .seg(to_server, flags(false, true, false, last))
                        .payload(payload);
                    self.offset += n;
                    self.unacked += 1;
                    let next = if to_server {
                        &mut self.client_next
                    } else {
                        &mut self.server_next
                    };
                    *next = next.wrapping_add(n as u32);
                    return Some(s);
                }
                State::Fin => {
                    let s = self.seg(true, FIN_ACK);
                    self.client_next = self.client_next.wrapping_add(1);
                    self.state = State::FinAck;
                    return Some(s);
                }
                State::FinAck => {
                    let s = self.seg(false, FIN_ACK);
                    self.server_next = self.server_next.wrapping_add(1);
                    self.state = State::LastAck;
                    return Some(s);
                }
                State::LastAck => {
                    self.state = State::Done;
                    return Some(self.seg(true, ACK));
                }
                State::Done => return None,
            }
        }
    }
}

const fn flags(syn: bool, ack: bool, fin: bool, psh: bool) -> TcpFlags {
    TcpFlags {
        syn,
        ack,
        fin,
        rst: false,
        psh,
    }
}
