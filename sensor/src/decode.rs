//! Ring-buffer records -> typed, owned kernel records.
//!
//! Everything here treats the bytes as untrusted: lengths are checked against
//! the record, strings are decoded lossily, and paths are normalised so a
//! caller's `../../etc/shadow` is reported as the file it names.

use sensor_bpf::wire::{self, WireError};
use std::net::IpAddr;

/// A decoded kernel record, before enrichment.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub hdr: Header,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub ty: u32,
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub start_time: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Exec(Exec),
    Fork { child_pid: u32, child_start_time: u64 },
    Exit { exit_code: u32 },
    File(File),
    Net(Net),
    Dns(Dns),
    Syscall(Syscall),
    L7(L7),
}

/// The first bytes of a send or receive on a classified TCP connection.
#[derive(Debug, Clone, PartialEq)]
pub struct L7 {
    pub sock_id: u64,
    pub family: u16,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// L7_DIR_SEND / L7_DIR_RECV
    pub direction: u8,
    /// L7_PROTO_*
    pub protocol: u8,
    pub total_len: u32,
    pub payload: Vec<u8>,
}

/// A security-relevant syscall (ptrace, module_load, bpf, memfd_create,
/// socket, dup, setuid, mount, namespace, unix_connect); see events.h for the strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Syscall {
    pub nr: u32,
    pub result: i64,
    pub args: [u64; 6],
    pub strs: [String; 3],
    pub oldfd_is_socket: bool,
    /// unix_connect: the path is an abstract-namespace name.
    pub unix_abstract: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exec {
    pub euid: u32,
    pub egid: u32,
    pub argc: u32,
    pub args: Vec<String>,
    pub args_truncated: bool,
    pub exe: String,
    pub exe_truncated: bool,
    pub cwd: String,
    pub filename: String,
    /// The executable's inode change time (ns since the epoch), read by the
    /// kernel at exec; 0 when unknown.
    pub exe_ctime_ns: u64,
    /// Filled by enrichment: the executable's inode changed after the parent
    /// process started (a binary dropped and run by an already-running tree).
    /// None when either time could not be read.
    pub written_after_parent_start: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub result: i64,
    pub flags: u32,
    pub mode: u32,
    pub syscall_nr: u32,
    /// Absolute and normalised.
    pub path: String,
    /// The string the caller passed, when it differs from `path`.
    pub raw_path: Option<String>,
    /// rename/link/symlink: the new name, absolute and normalised.
    pub new_path: Option<String>,
    /// The path came from the opened file's dentry (canonical, symlinks resolved).
    pub resolved: bool,
    /// The caller's current directory, when the kernel resolved a relative path against it.
    pub cwd: Option<String>,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub family: u16,
    pub protocol: u16,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    pub family: u16,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub direction: u16,
    pub total_len: u32,
    pub payload: Vec<u8>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(wire::cstr(b)).into_owned()
}

fn header(h: &wire::EventHeader) -> Header {
    Header {
        ty: h.ty,
        ts_boot_ns: h.ts_ns,
        cgroup_id: h.cgroup_id,
        start_time: h.start_time,
        pid: h.pid,
        tid: h.tid,
        ppid: h.ppid,
        uid: h.uid,
        gid: h.gid,
        comm: lossy(&h.comm),
    }
}

fn fixed<T: wire::Wire>(buf: &[u8], ty: u32) -> Result<(T, &[u8]), WireError> {
    let need = std::mem::size_of::<T>();
    let v = wire::read::<T>(buf).ok_or(WireError::Short { ty, need, got: buf.len() })?;
    Ok((v, &buf[need..]))
}

fn ip(family: u16, raw: &[u8; 16]) -> IpAddr {
    if family == libc::AF_INET6 as u16 { IpAddr::from(*raw) } else { IpAddr::from([raw[0], raw[1], raw[2], raw[3]]) }
}

/// Decodes one ring-buffer record.
pub fn decode(buf: &[u8]) -> Result<Record, WireError> {
    let ty = wire::record_type(buf).ok_or(WireError::Short {
        ty: 0,
        need: std::mem::size_of::<wire::EventHeader>(),
        got: buf.len(),
    })?;
    let body = match ty {
        wire::EV_EXEC => {
            let (e, data): (wire::ExecEvent, _) = fixed(buf, ty)?;
            let [args, exe, cwd, filename] = wire::split_fields(
                data,
                [e.args_len as usize, e.exe_len as usize, e.cwd_len as usize, e.filename_len as usize],
                ty,
            )?;
            return Ok(Record {
                hdr: header(&e.hdr),
                body: Body::Exec(Exec {
                    euid: e.euid,
                    egid: e.egid,
                    argc: e.argc,
                    args: split_args(args),
                    args_truncated: e.flags & wire::EXEC_ARGS_TRUNCATED != 0,
                    exe: lossy(exe),
                    exe_truncated: e.flags & wire::EXEC_EXE_TRUNCATED != 0,
                    cwd: lossy(cwd),
                    filename: lossy(filename),
                    exe_ctime_ns: e.exe_ctime_ns,
                    written_after_parent_start: None,
                }),
            });
        }
        wire::EV_FORK => {
            let (e, _): (wire::ForkEvent, _) = fixed(buf, ty)?;
            return Ok(Record {
                hdr: header(&e.hdr),
                body: Body::Fork { child_pid: e.child_pid, child_start_time: e.child_start_time },
            });
        }
        wire::EV_EXIT => {
            let (e, _): (wire::ExitEvent, _) = fixed(buf, ty)?;
            return Ok(Record { hdr: header(&e.hdr), body: Body::Exit { exit_code: e.exit_code } });
        }
        wire::EV_OPEN | wire::EV_UNLINK | wire::EV_RENAME | wire::EV_CHMOD | wire::EV_LINK | wire::EV_SYMLINK => {
            let (e, data): (wire::FileEvent, _) = fixed(buf, ty)?;
            return Ok(Record { hdr: header(&e.hdr), body: Body::File(file(&e, data)?) });
        }
        wire::EV_CONNECT | wire::EV_ACCEPT | wire::EV_LISTEN | wire::EV_CLOSE => {
            let (e, _): (wire::NetEvent, _) = fixed(buf, ty)?;
            Body::Net(Net {
                family: e.family,
                protocol: e.protocol,
                saddr: ip(e.family, &e.saddr),
                sport: e.sport,
                daddr: ip(e.family, &e.daddr),
                dport: e.dport,
                direction: e.direction,
                error: e.error,
                sock_id: e.sock_id,
                latency_ns: e.latency_ns,
                duration_ns: e.duration_ns,
                bytes_sent: e.bytes_sent,
                bytes_received: e.bytes_received,
                srtt_us: e.srtt_us,
                retransmits: e.retransmits,
            })
            .with_header(e.hdr)
        }
        wire::EV_DNS => {
            let (e, data): (wire::DnsEvent, _) = fixed(buf, ty)?;
            let [payload] = wire::split_fields(data, [e.payload_len as usize], ty)?;
            Body::Dns(Dns {
                family: e.family,
                saddr: ip(e.family, &e.saddr),
                sport: e.sport,
                daddr: ip(e.family, &e.daddr),
                dport: e.dport,
                direction: e.direction,
                total_len: e.total_len,
                payload: payload.to_vec(),
            })
            .with_header(e.hdr)
        }
        wire::EV_PTRACE..=wire::EV_UNIX_CONNECT => {
            let (e, data): (wire::SyscallEvent, _) = fixed(buf, ty)?;
            let lens = [e.str1_len as usize, e.str2_len as usize, e.str3_len as usize];
            let [a, b, c] = wire::split_fields(data, lens, ty)?;
            Body::Syscall(Syscall {
                nr: e.syscall_nr,
                result: e.result,
                args: e.args,
                strs: [lossy(a), lossy(b), lossy(c)],
                oldfd_is_socket: e.flags & wire::SC_OLDFD_IS_SOCKET != 0,
                unix_abstract: e.flags & wire::SC_UNIX_ABSTRACT != 0,
            })
            .with_header(e.hdr)
        }
        wire::EV_L7 => {
            let (e, data): (wire::L7Event, _) = fixed(buf, ty)?;
            let [payload] = wire::split_fields(data, [e.payload_len as usize], ty)?;
            Body::L7(L7 {
                sock_id: e.sock_id,
                family: e.family,
                saddr: ip(e.family, &e.saddr),
                sport: e.sport,
                daddr: ip(e.family, &e.daddr),
                dport: e.dport,
                direction: e.direction,
                protocol: e.protocol,
                total_len: e.total_len,
                payload: payload.to_vec(),
            })
            .with_header(e.hdr)
        }
        other => return Err(WireError::UnknownType(other)),
    };
    Ok(body)
}

trait WithHeader {
    fn with_header(self, h: wire::EventHeader) -> Record;
}

impl WithHeader for Body {
    fn with_header(self, h: wire::EventHeader) -> Record {
        Record { hdr: header(&h), body: self }
    }
}

fn split_args(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn file(e: &wire::FileEvent, data: &[u8]) -> Result<File, WireError> {
    let ty = e.hdr.ty;
    let [path, base, path2, base2] = wire::split_fields(
        data,
        [e.path_len as usize, e.base_len as usize, e.path2_len as usize, e.base2_len as usize],
        ty,
    )?;
    let resolved = e.info & wire::FILE_PATH_RESOLVED != 0;
    let path = lossy(path);
    let base = lossy(base);
    let path2 = lossy(path2);
    let base2 = lossy(base2);
    let truncated = e.info
        & (wire::FILE_PATH_TRUNCATED
            | wire::FILE_BASE_TRUNCATED
            | wire::FILE_PATH2_TRUNCATED
            | wire::FILE_BASE2_TRUNCATED)
        != 0;

    let mut out = File {
        result: e.result,
        flags: e.flags,
        mode: e.mode,
        syscall_nr: e.syscall_nr,
        resolved,
        truncated,
        ..Default::default()
    };
    if resolved {
        // an open that succeeded (or fchmod): canonical from the dentry, plus the caller's string
        out.path = path;
        if e.info & wire::FILE_BASE_IS_CWD != 0 && e.base2_len > 0 {
            out.cwd = Some(base2.clone());
        }
        // a walk cut short lacks the path's beginning; the caller's string,
        // joined and normalised, is complete (though symlinks stay unresolved)
        if e.info & wire::FILE_PATH_TRUNCATED != 0 && e.path2_len > 0 {
            let joined = join_normalize(&base2, &path2);
            if !joined.starts_with('?') {
                out.path = joined;
                out.resolved = false;
            }
        }
        if e.path2_len > 0 && path2 != out.path {
            out.raw_path = Some(path2);
        }
        return Ok(out);
    }
    if ty == wire::EV_SYMLINK {
        // the target is text stored in the link, not a path the caller touched
        out.path = path;
        out.new_path = Some(join_normalize(&base2, &path2));
        return Ok(out);
    }
    if e.info & wire::FILE_BASE_IS_CWD != 0 && e.base_len > 0 {
        out.cwd = Some(base.clone());
    }
    out.path = join_normalize(&base, &path);
    if out.path != path {
        out.raw_path = Some(path);
    }
    if e.path2_len > 0 {
        out.new_path = Some(join_normalize(&base2, &path2));
    }
    Ok(out)
}

/// Joins `rel` onto the absolute directory `base` (when `rel` is relative)
/// and removes `.`, `..` and repeated slashes, lexically. `..` never climbs
/// above `/`. When `rel` is relative and `base` is unknown, the result is
/// relative to an unknown directory and says so with a leading `?/`.
pub fn join_normalize(base: &str, rel: &str) -> String {
    let absolute = rel.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    let mut unknown_base = false;
    if !absolute {
        if base.starts_with('/') {
            parts.extend(base.split('/').filter(|c| !c.is_empty() && *c != "."));
            // a base is already canonical, but be safe with what the kernel sent
            let mut clean: Vec<&str> = Vec::new();
            for c in parts.drain(..) {
                if c == ".." {
                    clean.pop();
                } else {
                    clean.push(c);
                }
            }
            parts = clean;
        } else {
            unknown_base = true;
        }
    }
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(rel.len() + base.len() + 2);
    if unknown_base {
        out.push('?');
    }
    if parts.is_empty() {
        out.push('/');
    }
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// Names of the flags in an open(2) flags word.
pub fn open_flag_names(flags: u32) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(4);
    out.push(match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    });
    const NAMES: &[(u32, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    // O_TMPFILE includes O_DIRECTORY's bit
    if flags & 0o20000000 != 0 {
        out.push("O_TMPFILE");
    }
    for (bit, name) in NAMES {
        if flags & bit != 0 && !(*bit == 0o200000 && flags & 0o20000000 != 0) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_bpf::wire::*;

    fn hdr(ty: u32) -> EventHeader {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"cat");
        EventHeader { ty, pid: 42, tid: 43, ppid: 1, uid: 1000, gid: 1000, ts_ns: 5, comm, ..Default::default() }
    }

    fn bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a repr(C) wire struct; we only read its bytes.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }.to_vec()
    }

    fn file_record(ty: u32, info: u16, fields: [&[u8]; 4]) -> Vec<u8> {
        let e = FileEvent {
            hdr: hdr(ty),
            result: 3,
            flags: 0o100 | 1,
            mode: 0o644,
            path_len: fields[0].len() as u16,
            base_len: fields[1].len() as u16,
            path2_len: fields[2].len() as u16,
            base2_len: fields[3].len() as u16,
            info,
            ..Default::default()
        };
        let mut b = bytes(&e);
        for f in fields {
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn exec_record_decodes_all_fields() {
        let args = b"ls\0-l\0/tmp\0";
        let e = ExecEvent {
            hdr: hdr(EV_EXEC),
            euid: 0,
            egid: 0,
            args_len: args.len() as u32,
            argc: 3,
            exe_len: 12,
            cwd_len: 6,
            filename_len: 4,
            flags: EXEC_ARGS_TRUNCATED,
            exe_ctime_ns: 1_764_000_000_000_000_000,
        };
        let mut b = bytes(&e);
        b.extend_from_slice(args);
        b.extend_from_slice(b"/usr/bin/ls\0");
        b.extend_from_slice(b"/root\0");
        b.extend_from_slice(b"/ls\0");
        let r = decode(&b).unwrap();
        assert_eq!(r.hdr.pid, 42);
        assert_eq!(r.hdr.comm, "cat");
        let Body::Exec(x) = r.body else { panic!("not exec") };
        assert_eq!(x.args, vec!["ls", "-l", "/tmp"]);
        assert!(x.args_truncated);
        assert_eq!(x.exe, "/usr/bin/ls");
        assert_eq!(x.cwd, "/root");
        assert_eq!(x.filename, "/ls");
        assert_eq!(x.exe_ctime_ns, 1_764_000_000_000_000_000);
    }

    #[test]
    fn exec_record_with_lengths_past_the_end_is_an_error() {
        let e = ExecEvent { hdr: hdr(EV_EXEC), args_len: 5000, ..Default::default() };
        let b = bytes(&e);
        assert_eq!(decode(&b), Err(WireError::Lengths { ty: EV_EXEC }));
        assert!(matches!(decode(&b[..20]), Err(WireError::Short { .. })));
        assert!(matches!(decode(&b[..70]), Err(WireError::Short { ty: EV_EXEC, .. })));
    }

    #[test]
    fn unknown_type_is_an_error() {
        let b = bytes(&hdr(99));
        assert_eq!(decode(&b), Err(WireError::UnknownType(99)));
    }

    #[test]
    fn relative_open_that_failed_is_joined_to_its_base() {
        let b = file_record(EV_OPEN, 0, [b"../../etc/shadow\0", b"/home/u\0", b"", b""]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.raw_path.as_deref(), Some("../../etc/shadow"));
        assert!(!f.resolved);
    }

    #[test]
    fn resolved_open_keeps_the_callers_string_when_it_differs() {
        let b = file_record(EV_OPEN, FILE_PATH_RESOLVED, [b"/etc/shadow\0", b"", b"/etc/../etc/shadow\0", b""]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.raw_path.as_deref(), Some("/etc/../etc/shadow"));
        let b = file_record(EV_OPEN, FILE_PATH_RESOLVED, [b"/etc/passwd\0", b"", b"/etc/passwd\0", b""]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.raw_path, None);
    }

    #[test]
    fn truncated_walk_falls_back_to_the_callers_complete_string() {
        let info = FILE_PATH_RESOLVED | FILE_PATH_TRUNCATED | FILE_BASE_IS_CWD;
        let b = file_record(EV_OPEN, info, [b"/d40/d41/leaf\0", b"", b"d0/../d1/leaf\0", b"/deep\0"]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.path, "/deep/d1/leaf");
        assert!(f.truncated && !f.resolved);
        assert_eq!(f.cwd.as_deref(), Some("/deep"));
    }

    #[test]
    fn rename_has_both_paths_resolved_against_their_bases() {
        let b = file_record(EV_RENAME, 0, [b"a.txt\0", b"/tmp/d\0", b"../b.txt\0", b"/tmp/d/sub\0"]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.path, "/tmp/d/a.txt");
        assert_eq!(f.new_path.as_deref(), Some("/tmp/d/b.txt"));
    }

    #[test]
    fn symlink_target_is_kept_as_text() {
        let b = file_record(EV_SYMLINK, 0, [b"../secret\0", b"", b"link\0", b"/tmp\0"]);
        let Body::File(f) = decode(&b).unwrap().body else { panic!() };
        assert_eq!(f.path, "../secret");
        assert_eq!(f.new_path.as_deref(), Some("/tmp/link"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(join_normalize("/a/b", "c"), "/a/b/c");
        assert_eq!(join_normalize("/a/b", "./c/../d//e"), "/a/b/d/e");
        assert_eq!(join_normalize("/", "../../../etc/shadow"), "/etc/shadow");
        assert_eq!(join_normalize("/x", "/etc/../etc/./shadow"), "/etc/shadow");
        assert_eq!(join_normalize("/x", "/"), "/");
        assert_eq!(join_normalize("", "rel/x"), "?/rel/x");
        assert_eq!(join_normalize("/a", ".."), "/");
    }

    #[test]
    fn flag_names() {
        assert_eq!(open_flag_names(0), vec!["O_RDONLY"]);
        assert_eq!(
            open_flag_names(0o1 | 0o100 | 0o1000 | 0o2000000),
            vec!["O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"]
        );
        assert_eq!(open_flag_names(0o20200000 | 2), vec!["O_RDWR", "O_TMPFILE"]);
    }

    #[test]
    fn net_record_decodes_ipv4_and_ipv6() {
        let mut e = NetEvent { hdr: hdr(EV_CONNECT), family: 2, sport: 5000, dport: 80, ..Default::default() };
        e.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.daddr[..4].copy_from_slice(&[10, 1, 2, 3]);
        let Body::Net(n) = decode(&bytes(&e)).unwrap().body else { panic!() };
        assert_eq!(n.saddr.to_string(), "127.0.0.1");
        assert_eq!(n.daddr.to_string(), "10.1.2.3");
        e.family = 10;
        e.daddr = [0; 16];
        e.daddr[15] = 1;
        let Body::Net(n) = decode(&bytes(&e)).unwrap().body else { panic!() };
        assert_eq!(n.daddr.to_string(), "::1");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u64;
        for len in 0..400 {
            let mut b = vec![0u8; len];
            for x in b.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *x = seed as u8;
            }
            if len >= 28 {
                b[24..28].copy_from_slice(&((len % 15) as u32).to_le_bytes());
            }
            let _ = decode(&b);
        }
    }
}
