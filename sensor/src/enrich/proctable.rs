//! The process table: what the sensor knows about each live process (exe,
//! args, cwd, lineage, container), bounded by an LRU so a fork bomb or a
//! missed exit cannot grow it without limit.
//!
//! Entries are `Arc`s so that attaching process context to an event is a
//! reference-count bump, not a copy of argv.

use super::container;
use crate::decode::{Exec, Header};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// How many ancestors' executables an entry remembers.
pub const LINEAGE_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Learned from an exec event.
    Exec,
    /// Inherited at fork from the parent's entry.
    Fork,
    /// Read from /proc (processes that predate the sensor, or missed events).
    Procfs,
    /// Nothing known but what the event header says.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Kernel start time (ns since boot); 0 when learned from /proc.
    pub start_time: u64,
    pub exe: Arc<str>,
    pub args: Arc<[String]>,
    pub args_truncated: bool,
    pub cwd: Arc<str>,
    pub euid: Option<u32>,
    pub egid: Option<u32>,
    pub container_id: Option<Arc<str>>,
    pub systemd_unit: Option<Arc<str>>,
    /// The network namespace's inode (`/proc/PID/ns/net`), when read.
    pub netns: Option<u64>,
    /// Ancestors' executables, nearest first.
    pub lineage: Arc<[Arc<str>]>,
    pub source: Source,
}

impl ProcInfo {
    fn unknown(pid: u32, ppid: u32) -> Self {
        ProcInfo {
            pid,
            ppid,
            start_time: 0,
            exe: Arc::from(""),
            args: Arc::from(Vec::new()),
            args_truncated: false,
            cwd: Arc::from(""),
            euid: None,
            egid: None,
            container_id: None,
            systemd_unit: None,
            netns: None,
            lineage: Arc::from(Vec::new()),
            source: Source::Unknown,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TableStats {
    pub entries: usize,
    pub procfs_reads: u64,
    pub unknown: u64,
}

pub struct ProcTable {
    map: LruCache<u32, Arc<ProcInfo>>,
    procfs_root: std::path::PathBuf,
    stats: TableStats,
}

impl ProcTable {
    pub fn new(capacity: usize) -> Self {
        Self::with_procfs(capacity, "/proc")
    }

    pub fn with_procfs(capacity: usize, root: impl Into<std::path::PathBuf>) -> Self {
        ProcTable {
            map: LruCache::new(NonZeroUsize::new(capacity.max(16)).unwrap()),
            procfs_root: root.into(),
            stats: TableStats::default(),
        }
    }

    pub fn stats(&self) -> TableStats {
        TableStats { entries: self.map.len(), ..self.stats }
    }

    pub fn peek(&self, pid: u32) -> Option<&Arc<ProcInfo>> {
        self.map.peek(&pid)
    }

    fn lineage_of_parent(&self, ppid: u32) -> Arc<[Arc<str>]> {
        match self.map.peek(&ppid) {
            Some(p) => {
                let mut v: Vec<Arc<str>> = Vec::with_capacity(LINEAGE_MAX);
                if !p.exe.is_empty() {
                    v.push(p.exe.clone());
                }
                v.extend(p.lineage.iter().take(LINEAGE_MAX - v.len()).cloned());
                Arc::from(v)
            }
            None => Arc::from(Vec::new()),
        }
    }

    /// Loads every process in /proc; returns how many were read.
    pub fn scan_procfs(&mut self) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.procfs_root) else { return 0 };
        let mut pids: Vec<u32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
        pids.sort_unstable();
        let mut n = 0;
        for pid in &pids {
            if let Some(info) = self.read_procfs(*pid) {
                self.map.put(*pid, Arc::new(info));
                n += 1;
            }
        }
        // second pass: lineage needs the parents loaded
        for pid in &pids {
            let Some(entry) = self.map.peek(pid).cloned() else { continue };
            let mut chain: Vec<Arc<str>> = Vec::new();
            let mut cur = entry.ppid;
            while cur != 0 && chain.len() < LINEAGE_MAX {
                let Some(p) = self.map.peek(&cur) else { break };
                if !p.exe.is_empty() {
                    chain.push(p.exe.clone());
                }
                if p.ppid == cur {
                    break;
                }
                cur = p.ppid;
            }
            let mut updated = (*entry).clone();
            updated.lineage = Arc::from(chain);
            self.map.put(*pid, Arc::new(updated));
        }
        n
    }

    /// Reads one process from /proc; None if it is gone.
    pub fn read_procfs(&mut self, pid: u32) -> Option<ProcInfo> {
        self.stats.procfs_reads += 1;
        let dir = self.procfs_root.join(pid.to_string());
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let mut ppid = 0;
        let mut euid = None;
        let mut egid = None;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("PPid:") {
                ppid = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("Uid:") {
                euid = v.split_whitespace().nth(1).and_then(|x| x.parse().ok());
            } else if let Some(v) = line.strip_prefix("Gid:") {
                egid = v.split_whitespace().nth(1).and_then(|x| x.parse().ok());
            }
        }
        let exe = std::fs::read_link(dir.join("exe")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let cwd = std::fs::read_link(dir.join("cwd")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        // bounded: a hostile process can make its cmdline huge
        let cmdline = read_bounded(&dir.join("cmdline"), sensor_bpf::wire::ARGS_MAX).unwrap_or_default();
        let args_truncated = cmdline.len() >= sensor_bpf::wire::ARGS_MAX;
        let args: Vec<String> = cmdline
            .strip_suffix(&[0])
            .unwrap_or(&cmdline)
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cg =
            std::fs::read_to_string(dir.join("cgroup")).map(|t| container::parse_proc_cgroup(&t)).unwrap_or_default();
        Some(ProcInfo {
            pid,
            ppid,
            start_time: 0,
            exe: Arc::from(exe),
            args: Arc::from(args),
            args_truncated,
            cwd: Arc::from(cwd),
            euid,
            egid,
            container_id: cg.container_id.map(Arc::from),
            netns: netns_of(&dir),
            systemd_unit: cg.systemd_unit.map(Arc::from),
            lineage: self.lineage_of_parent(ppid),
            source: Source::Procfs,
        })
    }

    /// A process replaced its image.
    pub fn on_exec(&mut self, hdr: &Header, exec: &Exec) -> Arc<ProcInfo> {
        let parent = self.map.peek(&hdr.ppid).cloned();
        // the cgroup is read while the process is (usually) still alive; a
        // process that is already gone inherits its parent's identity
        let cg = container::read_for_pid(hdr.pid);
        let (container_id, systemd_unit) = match cg {
            Some(cg) => (cg.container_id.map(Arc::from), cg.systemd_unit.map(Arc::from)),
            None => match &parent {
                Some(p) => (p.container_id.clone(), p.systemd_unit.clone()),
                None => (None, None),
            },
        };
        let info = Arc::new(ProcInfo {
            pid: hdr.pid,
            ppid: hdr.ppid,
            start_time: hdr.start_time,
            exe: Arc::from(exec.exe.as_str()),
            args: Arc::from(exec.args.clone()),
            args_truncated: exec.args_truncated,
            cwd: Arc::from(exec.cwd.as_str()),
            euid: Some(exec.euid),
            egid: Some(exec.egid),
            container_id,
            systemd_unit,
            netns: netns_of(&self.procfs_root.join(hdr.pid.to_string()))
                .or_else(|| parent.as_ref().and_then(|p| p.netns)),
            lineage: self.lineage_of_parent(hdr.ppid),
            source: Source::Exec,
        });
        self.map.put(hdr.pid, info.clone());
        info
    }

    /// A new process (thread group) was forked from the caller.
    pub fn on_fork(&mut self, parent: &Header, child_pid: u32, child_start_time: u64) {
        let parent_info = self.lookup(parent);
        let mut child = (*parent_info).clone();
        child.pid = child_pid;
        child.ppid = parent.pid;
        child.start_time = child_start_time;
        child.lineage = self.lineage_of_parent(parent.pid);
        child.source = Source::Fork;
        self.map.put(child_pid, Arc::new(child));
    }

    /// The kernel showed the process's current directory (it resolved a
    /// relative path against it): keep the entry's cwd current after `cd`.
    pub fn update_cwd(&mut self, hdr: &Header, cwd: &str) {
        let entry = self.lookup(hdr);
        if &*entry.cwd != cwd {
            let mut e = (*entry).clone();
            e.cwd = Arc::from(cwd);
            self.map.put(hdr.pid, Arc::new(e));
        }
    }

    pub fn on_exit(&mut self, pid: u32) {
        self.map.pop(&pid);
    }

    /// The entry for the process an event came from, learning it from /proc
    /// (or, failing that, from the header alone) when it is not known.
    pub fn lookup(&mut self, hdr: &Header) -> Arc<ProcInfo> {
        if let Some(e) = self.map.get(&hdr.pid) {
            if e.start_time == hdr.start_time {
                return e.clone();
            }
            if e.start_time == 0 {
                // learned from /proc: adopt the kernel's start time
                let mut fixed = (**e).clone();
                fixed.start_time = hdr.start_time;
                let fixed = Arc::new(fixed);
                self.map.put(hdr.pid, fixed.clone());
                return fixed;
            }
            // pid reused by a process we did not see start
        }
        let info = match self.read_procfs(hdr.pid) {
            Some(mut i) => {
                i.start_time = hdr.start_time;
                i
            }
            None => {
                self.stats.unknown += 1;
                let mut i = ProcInfo::unknown(hdr.pid, hdr.ppid);
                i.start_time = hdr.start_time;
                i.lineage = self.lineage_of_parent(hdr.ppid);
                i
            }
        };
        let info = Arc::new(info);
        self.map.put(hdr.pid, info.clone());
        info
    }
}

impl ProcTable {
    /// When a process started, in ns since boot: from the table when an
    /// event carried it, else from `/proc/PID/stat` (clock-tick precision).
    pub fn start_time_boot_ns(&self, pid: u32) -> Option<u64> {
        if let Some(p) = self.map.peek(&pid)
            && p.start_time > 0
        {
            return Some(p.start_time);
        }
        let stat = std::fs::read_to_string(self.procfs_root.join(pid.to_string()).join("stat")).ok()?;
        parse_stat_start_ticks(&stat).map(|ticks| ticks.saturating_mul(1_000_000_000) / clock_ticks_per_sec())
    }

    /// The inode change time (ns since the epoch) of the executable a
    /// process runs: `/proc/PID/exe` names the very file that was mapped,
    /// even if it was since replaced or deleted.
    pub fn exe_ctime_ns(&self, pid: u32) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(self.procfs_root.join(pid.to_string()).join("exe")).ok()?;
        u64::try_from(md.ctime()).ok().map(|s| s * 1_000_000_000 + md.ctime_nsec() as u64)
    }
}

/// Field 22 (starttime) of `/proc/PID/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state); starttime is field 22
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The inode of a process's network namespace, from `DIR/ns/net` ("net:[N]").
fn netns_of(proc_dir: &std::path::Path) -> Option<u64> {
    let link = std::fs::read_link(proc_dir.join("ns/net")).ok()?;
    link.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

fn read_bounded(path: &std::path::Path, max: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(256);
    f.take(max as u64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(pid: u32, ppid: u32, start: u64) -> Header {
        Header { pid, tid: pid, ppid, start_time: start, comm: "x".into(), ..Default::default() }
    }

    fn exec(exe: &str) -> Exec {
        Exec { exe: exe.into(), args: vec![exe.into(), "-c".into()], cwd: "/".into(), ..Default::default() }
    }

    #[test]
    fn exec_fork_exec_builds_lineage() {
        let mut t = ProcTable::with_procfs(100, "/nonexistent");
        t.on_exec(&hdr(100, 1, 10), &exec("/usr/sbin/sshd"));
        t.on_fork(&hdr(100, 1, 10), 200, 20);
        let child = t.lookup(&hdr(200, 100, 20));
        assert_eq!(&*child.exe, "/usr/sbin/sshd");
        assert_eq!(child.source, Source::Fork);
        let bash = t.on_exec(&hdr(200, 100, 20), &exec("/usr/bin/bash"));
        assert_eq!(bash.lineage.iter().map(|s| &**s).collect::<Vec<_>>(), vec!["/usr/sbin/sshd"]);
        t.on_fork(&hdr(200, 100, 20), 300, 30);
        let cat = t.on_exec(&hdr(300, 200, 30), &exec("/usr/bin/cat"));
        assert_eq!(cat.lineage.iter().map(|s| &**s).collect::<Vec<_>>(), vec!["/usr/bin/bash", "/usr/sbin/sshd"]);
    }

    #[test]
    fn stat_start_time_survives_hostile_comm() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_stat_start_ticks(stat), Some(12345));
        assert_eq!(parse_stat_start_ticks("42 (x) S 1"), None);
        assert_eq!(parse_stat_start_ticks("garbage"), None);
    }

    #[test]
    fn own_start_time_and_exe_ctime_are_read_from_proc() {
        let t = ProcTable::new(16);
        let me = std::process::id();
        let start = t.start_time_boot_ns(me).expect("own start time");
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes a timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
        assert!(start > 0 && start <= now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64);
        let ctime = t.exe_ctime_ns(me).expect("own exe ctime");
        assert!(ctime > 1_500_000_000_000_000_000, "{ctime}");
        assert_eq!(t.exe_ctime_ns(u32::MAX), None);
    }

    #[test]
    fn lineage_is_bounded() {
        let mut t = ProcTable::with_procfs(100, "/nonexistent");
        for i in 1..30u32 {
            t.on_exec(&hdr(i + 1, i, i as u64), &exec(&format!("/bin/p{i}")));
        }
        let last = t.peek(30).unwrap();
        assert_eq!(last.lineage.len(), LINEAGE_MAX);
        assert_eq!(&*last.lineage[0], "/bin/p28");
    }

    #[test]
    fn table_is_bounded_by_lru() {
        let mut t = ProcTable::with_procfs(16, "/nonexistent");
        for pid in 1..1000 {
            t.on_exec(&hdr(pid, 1, 1), &exec("/bin/true"));
        }
        assert_eq!(t.stats().entries, 16);
        assert!(t.peek(999).is_some());
        assert!(t.peek(1).is_none());
    }

    #[test]
    fn reused_pid_is_not_confused_with_the_old_process() {
        let mut t = ProcTable::with_procfs(100, "/nonexistent");
        t.on_exec(&hdr(500, 1, 10), &exec("/usr/bin/old"));
        let now = t.lookup(&hdr(500, 1, 99));
        assert_eq!(&*now.exe, "", "a different start time is a different process");
        assert_eq!(now.source, Source::Unknown);
        assert_eq!(t.stats().unknown, 1);
    }

    #[test]
    fn unknown_process_is_read_from_procfs() {
        let mut t = ProcTable::new(1000);
        let me = std::process::id();
        let info = t.lookup(&hdr(me, 0, 77));
        assert_eq!(info.source, Source::Procfs);
        assert_eq!(&*info.exe, std::env::current_exe().unwrap().to_str().unwrap());
        assert_eq!(info.start_time, 77);
        assert!(!info.args.is_empty());
    }

    #[test]
    fn procfs_scan_finds_init_and_self() {
        let mut t = ProcTable::new(100_000);
        assert!(t.scan_procfs() > 1);
        let me = t.peek(std::process::id()).expect("own process scanned");
        assert!(me.ppid > 0);
        assert!(!me.lineage.is_empty(), "own process has a parent chain");
    }
}
