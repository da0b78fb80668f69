//! `#[repr(C)]` mirrors of `bpf/include/events.h`, and safe readers for the
//! records the kernel writes into the ring buffers.
//!
//! The kernel is trusted to write these layouts but not to be consistent: a
//! record's length fields are checked against the bytes actually received, so
//! a short or corrupt record is an error, never an out-of-bounds read.

pub const EV_EXEC: u32 = 1;
pub const EV_FORK: u32 = 2;
pub const EV_EXIT: u32 = 3;
pub const EV_OPEN: u32 = 4;
pub const EV_UNLINK: u32 = 5;
pub const EV_RENAME: u32 = 6;
pub const EV_CHMOD: u32 = 7;
pub const EV_LINK: u32 = 8;
pub const EV_SYMLINK: u32 = 9;
pub const EV_CONNECT: u32 = 10;
pub const EV_ACCEPT: u32 = 11;
pub const EV_LISTEN: u32 = 12;
pub const EV_CLOSE: u32 = 13;
pub const EV_DNS: u32 = 14;
pub const EV_PTRACE: u32 = 15;
pub const EV_MODULE_LOAD: u32 = 16;
pub const EV_BPF: u32 = 17;
pub const EV_MEMFD_CREATE: u32 = 18;
pub const EV_SOCKET: u32 = 19;
pub const EV_DUP: u32 = 20;
pub const EV_SETUID: u32 = 21;
pub const EV_MOUNT: u32 = 22;
pub const EV_NAMESPACE: u32 = 23;
pub const EV_UNIX_CONNECT: u32 = 24;
pub const EV_L7: u32 = 25;
/// Size of per-type arrays (lost counters, the enable mask).
pub const EV_TYPE_MAX: u32 = 32;

pub const SC_OLDFD_IS_SOCKET: u16 = 1 << 0;
pub const SC_UNIX_ABSTRACT: u16 = 1 << 1;

pub const EXEC_ARGS_TRUNCATED: u16 = 1 << 0;
pub const EXEC_EXE_TRUNCATED: u16 = 1 << 1;
pub const EXEC_CWD_TRUNCATED: u16 = 1 << 2;

pub const FILE_PATH_RESOLVED: u16 = 1 << 0;
pub const FILE_PATH_TRUNCATED: u16 = 1 << 1;
pub const FILE_BASE_TRUNCATED: u16 = 1 << 2;
pub const FILE_PATH2_TRUNCATED: u16 = 1 << 3;
pub const FILE_BASE2_TRUNCATED: u16 = 1 << 4;
pub const FILE_DIRFD_UNRESOLVED: u16 = 1 << 5;
pub const FILE_BASE_IS_CWD: u16 = 1 << 6;

pub const NET_DIR_OUTBOUND: u32 = 1;
pub const NET_DIR_INBOUND: u32 = 2;
pub const DNS_DIR_SEND: u16 = 1;
pub const DNS_DIR_RECV: u16 = 2;
pub const L7_PAYLOAD_MAX: usize = 256;
pub const L7_DIR_SEND: u8 = 1;
pub const L7_DIR_RECV: u8 = 2;
pub const L7_PROTO_HTTP: u8 = 1;
pub const L7_PROTO_REDIS: u8 = 2;
pub const L7_PROTO_PG: u8 = 3;

pub const PATH_FILTER_IGNORE: u32 = 1;
pub const PATH_FILTER_WATCH: u32 = 2;
pub const PATH_FILTER_KEY_MAX: usize = 64;

pub const ARGS_MAX: usize = 8192;
pub const RAW_PATH_MAX: usize = 512;
pub const DNS_PAYLOAD_MAX: usize = 512;

/// Every event type name, indexed by its number (index 0 and gaps are "").
pub const TYPE_NAMES: [&str; EV_TYPE_MAX as usize] = [
    "",
    "exec",
    "fork",
    "exit",
    "open",
    "unlink",
    "rename",
    "chmod",
    "link",
    "symlink",
    "connect",
    "accept",
    "listen",
    "close",
    "dns",
    "ptrace",
    "module_load",
    "bpf",
    "memfd_create",
    "socket",
    "dup",
    "setuid",
    "mount",
    "namespace",
    "unix_connect",
    "l7",
    "",
    "",
    "",
    "",
    "",
    "",
];

/// The `type` an event of wire type `ty` has in the JSON stream: the wire
/// name, except that AF_UNIX connects are `connect` events like TCP ones
/// (told apart by `net.family`), so rules and queries see one kind.
pub fn event_kind(ty: u32) -> &'static str {
    match ty {
        EV_UNIX_CONNECT => "connect",
        // raw payloads feed the L7 parsers, which emit `http`, `redis`, `pg`
        EV_L7 => "l7",
        _ => TYPE_NAMES.get(ty as usize).copied().filter(|n| !n.is_empty()).unwrap_or("unknown"),
    }
}

/// The event type number for a name, as used in configuration.
pub fn type_from_name(name: &str) -> Option<u32> {
    TYPE_NAMES.iter().position(|n| !n.is_empty() && *n == name).map(|i| i as u32)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EventHeader {
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub start_time: u64,
    pub ty: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecEvent {
    pub hdr: EventHeader,
    pub euid: u32,
    pub egid: u32,
    pub args_len: u32,
    pub argc: u32,
    pub exe_len: u16,
    pub cwd_len: u16,
    pub filename_len: u16,
    pub flags: u16,
    /// The executable's inode change time, ns since the epoch (0: unknown).
    pub exe_ctime_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ForkEvent {
    pub hdr: EventHeader,
    pub child_pid: u32,
    pub child_tid: u32,
    pub child_start_time: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitEvent {
    pub hdr: EventHeader,
    pub exit_code: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileEvent {
    pub hdr: EventHeader,
    pub result: i64,
    pub flags: u32,
    pub mode: u32,
    pub syscall_nr: u32,
    pub path_len: u16,
    pub base_len: u16,
    pub path2_len: u16,
    pub base2_len: u16,
    pub info: u16,
    pub _pad: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NetEvent {
    pub hdr: EventHeader,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    pub protocol: u16,
    pub direction: u32,
    pub error: i32,
    pub sock_id: u64,
    pub latency_ns: u64,
    pub duration_ns: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub srtt_us: u32,
    pub retransmits: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsEvent {
    pub hdr: EventHeader,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    pub direction: u16,
    pub payload_len: u32,
    pub total_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct L7Event {
    pub hdr: EventHeader,
    pub sock_id: u64,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    pub direction: u8,
    pub protocol: u8,
    pub total_len: u32,
    pub payload_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SyscallEvent {
    pub hdr: EventHeader,
    pub result: i64,
    pub args: [u64; 6],
    pub syscall_nr: u32,
    pub str1_len: u16,
    pub str2_len: u16,
    pub str3_len: u16,
    pub flags: u16,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PathFilterKey {
    pub prefixlen: u32,
    pub data: [u8; PATH_FILTER_KEY_MAX],
}

mod sealed {
    pub trait Sealed {}
}

/// Plain-old-data wire structs: every bit pattern is a valid value, so they
/// can be read from untrusted bytes.
pub trait Wire: sealed::Sealed + Copy {}
macro_rules! wire {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Wire for $t {})* };
}
wire!(EventHeader, ExecEvent, ForkEvent, ExitEvent, FileEvent, NetEvent, DnsEvent, SyscallEvent, L7Event);

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the fixed part of the record.
    Short { ty: u32, need: usize, got: usize },
    /// The variable part's length fields exceed the record.
    Lengths { ty: u32 },
    /// A type number this build does not know.
    UnknownType(u32),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Short { ty, need, got } => {
                write!(f, "record of type {ty} is {got} bytes, its fixed part needs {need}")
            }
            WireError::Lengths { ty } => write!(f, "record of type {ty} has lengths beyond its end"),
            WireError::UnknownType(t) => write!(f, "unknown record type {t}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Reads a wire struct from the start of `buf`.
pub fn read<T: Wire>(buf: &[u8]) -> Option<T> {
    if buf.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above, T is a sealed #[repr(C)] POD type
    // valid for every bit pattern, and read_unaligned tolerates any alignment.
    Some(unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const T) })
}

/// A record's type number, if the record is long enough to have a header.
pub fn record_type(buf: &[u8]) -> Option<u32> {
    read::<EventHeader>(buf).map(|h| h.ty)
}

/// Splits `data` into consecutive fields of the given lengths.
pub fn split_fields<const N: usize>(data: &[u8], lens: [usize; N], ty: u32) -> Result<[&[u8]; N], WireError> {
    let mut out = [&data[..0]; N];
    let mut off = 0usize;
    for (i, len) in lens.into_iter().enumerate() {
        let end = off.checked_add(len).ok_or(WireError::Lengths { ty })?;
        out[i] = data.get(off..end).ok_or(WireError::Lengths { ty })?;
        off = end;
    }
    Ok(out)
}

/// The bytes of a NUL-terminated string field, without the NUL (and without
/// anything after a NUL the kernel left inside the field).
pub fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// Layout constants measured from events.h by build.rs with the C compiler.
#[allow(dead_code)]
pub mod c_layout {
    include!(concat!(env!("OUT_DIR"), "/layout.rs"));
}

#[cfg(test)]
mod tests {
    use super::c_layout as c;
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn header_matches_c() {
        assert_eq!(size_of::<EventHeader>(), c::EVENT_HEADER_SIZE);
        assert_eq!(offset_of!(EventHeader, ts_ns), c::EVENT_HEADER_TS_NS);
        assert_eq!(offset_of!(EventHeader, cgroup_id), c::EVENT_HEADER_CGROUP_ID);
        assert_eq!(offset_of!(EventHeader, start_time), c::EVENT_HEADER_START_TIME);
        assert_eq!(offset_of!(EventHeader, ty), c::EVENT_HEADER_TYPE);
        assert_eq!(offset_of!(EventHeader, pid), c::EVENT_HEADER_PID);
        assert_eq!(offset_of!(EventHeader, tid), c::EVENT_HEADER_TID);
        assert_eq!(offset_of!(EventHeader, ppid), c::EVENT_HEADER_PPID);
        assert_eq!(offset_of!(EventHeader, uid), c::EVENT_HEADER_UID);
        assert_eq!(offset_of!(EventHeader, gid), c::EVENT_HEADER_GID);
        assert_eq!(offset_of!(EventHeader, comm), c::EVENT_HEADER_COMM);
    }

    #[test]
    fn exec_matches_c() {
        // The C struct ends in a flexible array: its size is where data starts.
        assert_eq!(size_of::<ExecEvent>(), c::EXEC_EVENT_DATA);
        assert_eq!(size_of::<ExecEvent>(), c::EXEC_EVENT_SIZE);
        assert_eq!(offset_of!(ExecEvent, euid), c::EXEC_EVENT_EUID);
        assert_eq!(offset_of!(ExecEvent, egid), c::EXEC_EVENT_EGID);
        assert_eq!(offset_of!(ExecEvent, args_len), c::EXEC_EVENT_ARGS_LEN);
        assert_eq!(offset_of!(ExecEvent, argc), c::EXEC_EVENT_ARGC);
        assert_eq!(offset_of!(ExecEvent, exe_len), c::EXEC_EVENT_EXE_LEN);
        assert_eq!(offset_of!(ExecEvent, cwd_len), c::EXEC_EVENT_CWD_LEN);
        assert_eq!(offset_of!(ExecEvent, filename_len), c::EXEC_EVENT_FILENAME_LEN);
        assert_eq!(offset_of!(ExecEvent, flags), c::EXEC_EVENT_FLAGS);
    }

    #[test]
    fn fork_exit_match_c() {
        assert_eq!(size_of::<ForkEvent>(), c::FORK_EVENT_SIZE);
        assert_eq!(offset_of!(ForkEvent, child_pid), c::FORK_EVENT_CHILD_PID);
        assert_eq!(offset_of!(ForkEvent, child_tid), c::FORK_EVENT_CHILD_TID);
        assert_eq!(offset_of!(ForkEvent, child_start_time), c::FORK_EVENT_CHILD_START_TIME);
        assert_eq!(size_of::<ExitEvent>(), c::EXIT_EVENT_SIZE);
        assert_eq!(offset_of!(ExitEvent, exit_code), c::EXIT_EVENT_EXIT_CODE);
    }

    #[test]
    fn file_matches_c() {
        assert_eq!(size_of::<FileEvent>(), c::FILE_EVENT_DATA);
        assert_eq!(size_of::<FileEvent>(), c::FILE_EVENT_SIZE);
        assert_eq!(offset_of!(FileEvent, result), c::FILE_EVENT_RESULT);
        assert_eq!(offset_of!(FileEvent, flags), c::FILE_EVENT_FLAGS);
        assert_eq!(offset_of!(FileEvent, mode), c::FILE_EVENT_MODE);
        assert_eq!(offset_of!(FileEvent, syscall_nr), c::FILE_EVENT_SYSCALL_NR);
        assert_eq!(offset_of!(FileEvent, path_len), c::FILE_EVENT_PATH_LEN);
        assert_eq!(offset_of!(FileEvent, base_len), c::FILE_EVENT_BASE_LEN);
        assert_eq!(offset_of!(FileEvent, path2_len), c::FILE_EVENT_PATH2_LEN);
        assert_eq!(offset_of!(FileEvent, base2_len), c::FILE_EVENT_BASE2_LEN);
        assert_eq!(offset_of!(FileEvent, info), c::FILE_EVENT_INFO);
    }

    #[test]
    fn net_matches_c() {
        assert_eq!(size_of::<NetEvent>(), c::NET_EVENT_SIZE);
        assert_eq!(offset_of!(NetEvent, saddr), c::NET_EVENT_SADDR);
        assert_eq!(offset_of!(NetEvent, daddr), c::NET_EVENT_DADDR);
        assert_eq!(offset_of!(NetEvent, sport), c::NET_EVENT_SPORT);
        assert_eq!(offset_of!(NetEvent, dport), c::NET_EVENT_DPORT);
        assert_eq!(offset_of!(NetEvent, family), c::NET_EVENT_FAMILY);
        assert_eq!(offset_of!(NetEvent, protocol), c::NET_EVENT_PROTOCOL);
        assert_eq!(offset_of!(NetEvent, direction), c::NET_EVENT_DIRECTION);
        assert_eq!(offset_of!(NetEvent, error), c::NET_EVENT_ERROR);
        assert_eq!(offset_of!(NetEvent, sock_id), c::NET_EVENT_SOCK_ID);
        assert_eq!(offset_of!(NetEvent, latency_ns), c::NET_EVENT_LATENCY_NS);
        assert_eq!(offset_of!(NetEvent, duration_ns), c::NET_EVENT_DURATION_NS);
        assert_eq!(offset_of!(NetEvent, bytes_sent), c::NET_EVENT_BYTES_SENT);
        assert_eq!(offset_of!(NetEvent, bytes_received), c::NET_EVENT_BYTES_RECEIVED);
        assert_eq!(offset_of!(NetEvent, srtt_us), c::NET_EVENT_SRTT_US);
        assert_eq!(offset_of!(NetEvent, retransmits), c::NET_EVENT_RETRANSMITS);
    }

    #[test]
    fn dns_matches_c() {
        assert_eq!(size_of::<DnsEvent>(), c::DNS_EVENT_DATA);
        assert_eq!(size_of::<DnsEvent>(), c::DNS_EVENT_SIZE);
        assert_eq!(offset_of!(DnsEvent, saddr), c::DNS_EVENT_SADDR);
        assert_eq!(offset_of!(DnsEvent, daddr), c::DNS_EVENT_DADDR);
        assert_eq!(offset_of!(DnsEvent, sport), c::DNS_EVENT_SPORT);
        assert_eq!(offset_of!(DnsEvent, dport), c::DNS_EVENT_DPORT);
        assert_eq!(offset_of!(DnsEvent, family), c::DNS_EVENT_FAMILY);
        assert_eq!(offset_of!(DnsEvent, direction), c::DNS_EVENT_DIRECTION);
        assert_eq!(offset_of!(DnsEvent, payload_len), c::DNS_EVENT_PAYLOAD_LEN);
        assert_eq!(offset_of!(DnsEvent, total_len), c::DNS_EVENT_TOTAL_LEN);
    }

    #[test]
    fn l7_matches_c() {
        assert_eq!(size_of::<L7Event>(), c::L7_EVENT_DATA);
        assert_eq!(size_of::<L7Event>(), c::L7_EVENT_SIZE);
        assert_eq!(offset_of!(L7Event, sock_id), c::L7_EVENT_SOCK_ID);
        assert_eq!(offset_of!(L7Event, saddr), c::L7_EVENT_SADDR);
        assert_eq!(offset_of!(L7Event, daddr), c::L7_EVENT_DADDR);
        assert_eq!(offset_of!(L7Event, sport), c::L7_EVENT_SPORT);
        assert_eq!(offset_of!(L7Event, dport), c::L7_EVENT_DPORT);
        assert_eq!(offset_of!(L7Event, family), c::L7_EVENT_FAMILY);
        assert_eq!(offset_of!(L7Event, direction), c::L7_EVENT_DIRECTION);
        assert_eq!(offset_of!(L7Event, protocol), c::L7_EVENT_PROTOCOL);
        assert_eq!(offset_of!(L7Event, total_len), c::L7_EVENT_TOTAL_LEN);
        assert_eq!(offset_of!(L7Event, payload_len), c::L7_EVENT_PAYLOAD_LEN);
    }

    #[test]
    fn syscall_matches_c() {
        assert_eq!(size_of::<SyscallEvent>(), c::SYSCALL_EVENT_DATA);
        assert_eq!(size_of::<SyscallEvent>(), c::SYSCALL_EVENT_SIZE);
        assert_eq!(offset_of!(SyscallEvent, result), c::SYSCALL_EVENT_RESULT);
        assert_eq!(offset_of!(SyscallEvent, args), c::SYSCALL_EVENT_ARGS);
        assert_eq!(offset_of!(SyscallEvent, syscall_nr), c::SYSCALL_EVENT_SYSCALL_NR);
        assert_eq!(offset_of!(SyscallEvent, str1_len), c::SYSCALL_EVENT_STR1_LEN);
        assert_eq!(offset_of!(SyscallEvent, str2_len), c::SYSCALL_EVENT_STR2_LEN);
        assert_eq!(offset_of!(SyscallEvent, str3_len), c::SYSCALL_EVENT_STR3_LEN);
        assert_eq!(offset_of!(SyscallEvent, flags), c::SYSCALL_EVENT_FLAGS);
    }

    #[test]
    fn short_and_inconsistent_records_are_errors() {
        assert!(read::<ExecEvent>(&[0u8; 10]).is_none());
        let data = [1u8, 2, 3];
        assert!(split_fields(&data, [2, 2], EV_OPEN).is_err());
        assert!(split_fields(&data, [usize::MAX, 1], EV_OPEN).is_err());
        let [a, b] = split_fields(&data, [1, 2], EV_OPEN).unwrap();
        assert_eq!((a, b), (&[1u8][..], &[2u8, 3][..]));
    }

    #[test]
    fn type_names_round_trip() {
        for (i, n) in TYPE_NAMES.iter().enumerate() {
            if !n.is_empty() {
                assert_eq!(type_from_name(n), Some(i as u32));
            }
        }
        assert_eq!(type_from_name("bogus"), None);
    }
}
