//! Enrichment: kernel records + what the sensor knows about processes ->
//! events with full process context (exe, args, lineage, container).

pub mod container;
pub mod dns;
pub mod proctable;

use crate::decode::{Body, Record};
use crate::event::Event;
use proctable::ProcTable;
use std::sync::Arc;

/// Converts kernel boot-time stamps into wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime - boottime, in ns.
    offset_ns: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec we own.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl Clock {
    pub fn now() -> Self {
        Clock { offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME) }
    }

    pub fn wall_ns(&self, boot_ns: u64) -> u64 {
        (boot_ns as i128 + self.offset_ns).max(0) as u64
    }
}

pub struct Enricher {
    pub table: ProcTable,
    host: Arc<str>,
    clock: Clock,
    seq: u64,
    /// DNS queries in flight: (pid, query id, name) -> sent at (boot ns).
    dns_queries: lru::LruCache<(u32, u16, String), u64>,
}

impl Enricher {
    pub fn new(table: ProcTable, host: &str) -> Self {
        Enricher {
            table,
            host: Arc::from(host),
            clock: Clock::now(),
            seq: 0,
            dns_queries: lru::LruCache::new(std::num::NonZeroUsize::new(4096).expect("non-zero")),
        }
    }

    /// Whether the program a process just executed was written (its inode
    /// changed) after its parent started: the shape of a dropped binary run
    /// by a running service or container, as opposed to one installed
    /// before the tree started.
    fn written_after_parent_start(&self, hdr: &crate::decode::Header, kernel_ctime_ns: u64) -> Option<bool> {
        let parent_start = self.table.start_time_boot_ns(hdr.ppid)?;
        // the kernel's reading, taken at exec; /proc only if the kernel could not
        let ctime = if kernel_ctime_ns > 0 { kernel_ctime_ns } else { self.table.exe_ctime_ns(hdr.pid)? };
        Some(ctime > self.clock.wall_ns(parent_start))
    }

    /// Re-reads the clock offset (NTP steps the wall clock; boot time does not move).
    pub fn resync_clock(&mut self) {
        self.clock = Clock::now();
    }

    pub fn enrich(&mut self, mut rec: Record) -> Event {
        let kind = sensor_bpf::wire::event_kind(rec.hdr.ty);
        if let Body::Exec(x) = &mut rec.body {
            x.written_after_parent_start = self.written_after_parent_start(&rec.hdr, x.exe_ctime_ns);
        }
        let process = match &rec.body {
            Body::Exec(x) => self.table.on_exec(&rec.hdr, x),
            Body::Fork { child_pid, child_start_time } => {
                let parent = self.table.lookup(&rec.hdr);
                self.table.on_fork(&rec.hdr, *child_pid, *child_start_time);
                parent
            }
            Body::Exit { .. } => {
                let p = self.table.lookup(&rec.hdr);
                self.table.on_exit(rec.hdr.pid);
                p
            }
            Body::File(f) if f.cwd.is_some() => {
                self.table.update_cwd(&rec.hdr, f.cwd.as_deref().unwrap_or_default());
                self.table.lookup(&rec.hdr)
            }
            _ => self.table.lookup(&rec.hdr),
        };
        let dns = match &rec.body {
            Body::Dns(d) => dns::parse(&d.payload).ok().map(|mut m| {
                // a client's view: a query it sent, then the response it received
                use sensor_bpf::wire::{DNS_DIR_RECV, DNS_DIR_SEND};
                let key = (rec.hdr.pid, m.id, m.qname.to_ascii_lowercase());
                if m.response && d.direction == DNS_DIR_RECV {
                    m.latency_ns = self.dns_queries.pop(&key).map(|sent| rec.hdr.ts_boot_ns.saturating_sub(sent));
                } else if !m.response && d.direction == DNS_DIR_SEND {
                    self.dns_queries.put(key, rec.hdr.ts_boot_ns);
                }
                m
            }),
            _ => None,
        };
        self.seq += 1;
        Event {
            ts_ns: self.clock.wall_ns(rec.hdr.ts_boot_ns),
            seq: self.seq,
            kind,
            host: self.host.clone(),
            hdr: rec.hdr,
            process,
            body: rec.body,
            dns,
        }
    }
}
