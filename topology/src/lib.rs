//! The live service topology: who talks to whom over TCP, how often, how
//! fast, with how many failures and bytes. It knows nothing of eBPF: the
//! sensor feeds it [`Observation`]s built from its connect, accept, listen,
//! close and DNS events.
//!
//! Both ends of a connection inside this host are joined by their address
//! tuple (the client's connect and the server's accept), so a service reached
//! through a network namespace's address is still a named node. A remote end
//! is `ip:port`, or `name:port` when the sensor saw a DNS answer for it.
//!
//! Every table is bounded (edges, pending connects, sockets, DNS names, listeners);
//! what is evicted is counted.

mod graph;
mod identity;
mod prometheus;

pub use graph::{Activity, EdgeSnapshot, Graph, GraphStats, Histogram, NodeSnapshot, Snapshot};
pub use identity::{NameRule, TopologyConfig};
pub use prometheus::render;

use std::net::SocketAddr;

/// The process at one end of a connection, as the sensor knows it.
#[derive(Debug, Clone, Copy)]
pub struct Proc<'a> {
    pub pid: u32,
    pub exe: &'a str,
    pub container_id: Option<&'a str>,
    pub systemd_unit: Option<&'a str>,
    /// The network namespace, when not the host's: two copies of a service
    /// in two namespaces are two nodes.
    pub netns: Option<&'a str>,
}

/// What the sensor saw, in the order it saw it.
#[derive(Debug, Clone)]
pub enum Observation<'a> {
    /// A process listens on `local` (an unspecified address listens on all).
    Listen { proc: Proc<'a>, local: SocketAddr },
    /// A TCP connect finished (established or failed).
    Connect { proc: Proc<'a>, sock_id: u64, local: SocketAddr, remote: SocketAddr, ok: bool, latency_ns: u64 },
    /// A server accepted a connection from `remote`.
    Accept { proc: Proc<'a>, sock_id: u64, local: SocketAddr, remote: SocketAddr },
    /// A connection closed; `outbound` when this end connected.
    Close { sock_id: u64, outbound: bool, stats: CloseStats },
    /// A DNS answer: `addr` is known as `name`.
    DnsAnswer { name: &'a str, addr: std::net::IpAddr },
    /// An L7 request and its response on a connection, seen by one end
    /// (`client_side`: the end that connected). When both ends are on this
    /// host the server's view counts (its latency is the server's time).
    Request { sock_id: u64, client_side: bool, protocol: Protocol, failed: bool, latency_ns: u64 },
    /// A request/response over a datagram protocol (DNS), seen by the client.
    Exchange { proc: Proc<'a>, server: SocketAddr, protocol: Protocol, failed: bool, latency_ns: u64 },
}

/// L7 protocols the sensor parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Redis,
    Pg,
    Dns,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Redis => "redis",
            Protocol::Pg => "pg",
            Protocol::Dns => "dns",
        }
    }
}

/// Totals of a closed connection, from this end's point of view.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloseStats {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration_ns: u64,
    pub srtt_us: u32,
    pub retransmits: u32,
}
