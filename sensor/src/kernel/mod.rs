//! Loading the BPF objects, attaching their programs, configuring the
//! in-kernel filters, and reading the per-type lost counters.
//!
//! One `Ebpf` per hook family (process, file, net): each has its own ring
//! buffer, so one family's storm cannot crowd out another's events. Dropping
//! `Kernel` detaches every program.
//!
//! Mechanisms: some capabilities have a preferred variant (fexit programs,
//! which need BPF trampolines) next to the tracepoint programs every kernel
//! runs. The loader decides per capability by trying: it loads and attaches
//! the preferred programs, and when the kernel refuses them it logs the
//! program and the kernel's reason and attaches the tracepoint programs
//! instead. Both produce the same records (see `VARIANTS`). The choice is in
//! `Kernel::mechanisms`, logged at start and reported by `sensor probe`.

pub mod mounts;
pub mod probe;
pub mod reader;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, FExit, ProgramError, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use sensor_bpf::wire;
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("the sensor must run as root (effective uid is {0}): loading eBPF programs needs CAP_BPF and CAP_PERFMON")]
    NotRoot(u32),
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing or unreadable: {0}); the sensor needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf(String),
    #[error("cannot load BPF object {object}: {message}")]
    Object { object: &'static str, message: String },
    #[error("the verifier rejected program {program} (object {object}): {reason}\nverifier's last lines:\n{log}")]
    Verifier { object: &'static str, program: String, reason: String, log: String },
    #[error("cannot attach program {program} (object {object}) to {target}: {message}")]
    Attach { object: &'static str, program: String, target: String, message: String },
    #[error("cannot configure map {map}: {message}")]
    Map { map: &'static str, message: String },
    #[error("{0}")]
    Mount(String),
}

/// Everything the loader needs to know, already validated.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    pub self_tgid: u32,
    pub enabled_mask: u64,
    pub wakeup_bytes: u64,
    pub ring_bytes: [u32; 3],
    pub ignore_prefixes: Vec<String>,
    pub watch_prefixes: Vec<String>,
    pub watch_only: bool,
}

/// One loaded object and the programs in it.
pub struct Loaded {
    pub name: &'static str,
    pub ebpf: Ebpf,
    pub attached: Vec<String>,
    /// Programs whose hook this kernel does not have (e.g. an optional syscall).
    pub skipped: Vec<(String, String)>,
    /// How each of this object's capabilities is observed.
    pub mechanisms: Vec<Mechanism>,
}

pub struct Kernel {
    pub objects: Vec<Loaded>,
}

/// How one capability is observed on this kernel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mechanism {
    pub capability: &'static str,
    /// Program type: "fexit", "tracepoint" or "tp_btf".
    pub kind: &'static str,
    /// The hooks, for people.
    pub mechanism: &'static str,
    /// Why the preferred variant is not used: its program and the kernel's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// A capability with two implementations that send the same records: a
/// preferred one that needs newer kernel features, and the tracepoint
/// programs it stands in for when it loads.
pub struct Variant {
    pub capability: &'static str,
    pub object: &'static str,
    /// Loaded and attached first, all or nothing.
    pub preferred: &'static [&'static str],
    pub preferred_kind: &'static str,
    pub preferred_mechanism: &'static str,
    /// Not loaded when the preferred programs attached.
    pub fallback: &'static [&'static str],
    pub fallback_mechanism: &'static str,
}

/// Preferred variants, per capability. Why these and not others (also in the
/// README's "Kernel matrix" section):
///  - file.open: fexit on do_sys_openat2 sees arguments and result in one
///    program (no enter/exit pair and per-thread pending slot), including the
///    fd and failed opens. lsm/file_open would give neither (it runs inside
///    the open, before the fd exists, and never for a failed lookup).
///  - connect.unix: fexit on __sys_connect_file has the kernel's copy of the
///    sockaddr (the tracepoints re-read the caller's memory), the result
///    including an LSM's denial, and io_uring connects too. lsm/socket_connect
///    runs before the connect and cannot report its result.
///  - exec, fork, exit, TCP life cycle: tp_btf already runs everywhere the
///    sensor does and sees everything (lsm/bprm_check_security runs before the
///    new image has its argv, so it cannot fill the same exec record).
///  - unlink, rename, chmod, link, symlink: the syscall tracepoints; the
///    kernel functions behind them free the name before they return, so an
///    fexit variant would need an fentry/fexit pair with the same pending
///    state the tracepoints keep.
pub const VARIANTS: &[Variant] = &[
    Variant {
        capability: "file.open",
        object: "file",
        preferred: &["fexit_do_sys_openat2"],
        preferred_kind: "fexit",
        preferred_mechanism: "fexit do_sys_openat2 (open, creat, openat, openat2)",
        fallback: &[
            "enter_open",
            "exit_open",
            "enter_creat",
            "exit_creat",
            "enter_openat",
            "exit_openat",
            "enter_openat2",
            "exit_openat2",
        ],
        fallback_mechanism: "tracepoints syscalls/sys_{enter,exit}_{open,creat,openat,openat2}",
    },
    Variant {
        capability: "connect.unix",
        object: "process",
        preferred: &["fexit___sys_connect_file"],
        preferred_kind: "fexit",
        preferred_mechanism: "fexit __sys_connect_file (connect syscall and io_uring)",
        fallback: &["enter_connect", "exit_connect"],
        fallback_mechanism: "tracepoints syscalls/sys_{enter,exit}_connect",
    },
];

/// Capabilities with one implementation on every kernel, per object.
const FIXED: &[(&str, &str, &str, &str)] = &[
    ("process", "exec", "tp_btf", "tp_btf sched_process_exec"),
    ("process", "fork.exit", "tp_btf", "tp_btf sched_process_fork, sched_process_exit"),
    (
        "process",
        "syscalls",
        "tracepoint",
        "tracepoints syscalls/sys_{enter,exit}_* (ptrace, bpf, modules, memfd, socket, dup, set*id, mount, namespaces)",
    ),
    ("file", "file.modify", "tracepoint", "tracepoints syscalls/sys_{enter,exit}_{unlink,rename,chmod,link,symlink}*"),
    (
        "net",
        "connect.tcp",
        "tp_btf",
        "tp_btf inet_sock_set_state (connect, listen, close) + tracepoints sys_exit_accept*",
    ),
    ("net", "dns", "tracepoint", "tracepoints syscalls/sys_{enter,exit}_{sendto,sendmsg,sendmmsg,recvfrom,recvmsg}"),
    (
        "l7",
        "l7",
        "tracepoint",
        "tracepoints syscalls/sys_{enter,exit}_{read,write,readv,writev,sendto,recvfrom,sendmsg,recvmsg}",
    ),
];

/// `SENSOR_KERNEL_PREFER=tracepoint` skips every preferred variant (for
/// comparing the two on one kernel, and for working around a kernel bug).
pub const PREFER_ENV: &str = "SENSOR_KERNEL_PREFER";

fn prefer_tracepoints() -> bool {
    std::env::var(PREFER_ENV).map(|v| v == "tracepoint").unwrap_or(false)
}

/// Where a program attaches, from its name (see the .bpf.c files).
fn attach_target(prog_name: &str) -> Option<(&'static str, String)> {
    if let Some(func) = prog_name.strip_prefix("fexit_") {
        return Some(("fexit", func.to_string()));
    }
    if let Some(sc) = prog_name.strip_prefix("enter_") {
        return Some(("tracepoint", format!("syscalls/sys_enter_{sc}")));
    }
    if let Some(sc) = prog_name.strip_prefix("exit_") {
        return Some(("tracepoint", format!("syscalls/sys_exit_{sc}")));
    }
    let tp = match prog_name {
        "handle_exec" => "sched_process_exec",
        "handle_fork" => "sched_process_fork",
        "handle_exit" => "sched_process_exit",
        "handle_set_state" => "inet_sock_set_state",
        _ => return None,
    };
    Some(("tp_btf", tp.to_string()))
}

/// The last lines of a verifier log: the reason is at the end.
pub fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn program_error(object: &'static str, program: &str, e: ProgramError) -> KernelError {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => KernelError::Verifier {
            object,
            program: program.to_string(),
            reason: io_error.to_string(),
            log: log_tail(&verifier_log.to_string(), 12),
        },
        other => KernelError::Verifier {
            object,
            program: program.to_string(),
            reason: other.to_string(),
            log: String::new(),
        },
    }
}

/// An error and its sources on one line: aya's top-level messages omit the errno.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn tracepoint_exists(category_and_name: &str) -> bool {
    ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
        .iter()
        .any(|root| Path::new(root).join(category_and_name).exists())
}

pub fn possible_cpus() -> u32 {
    aya::util::nr_cpus().map(|n| n as u32).unwrap_or(256).max(1)
}

pub fn check_privileges() -> Result<Btf, KernelError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(KernelError::NotRoot(euid));
    }
    Btf::from_sys_fs().map_err(|e| KernelError::NoBtf(e.to_string()))
}

impl Kernel {
    /// Loads and attaches every hook family. Fails with the program's name and
    /// the verifier's reason when the kernel rejects one.
    pub fn load(opts: &KernelOptions) -> Result<Kernel, KernelError> {
        Self::load_objects(opts, &sensor_bpf::all())
    }

    /// Loads and attaches the given objects (ring sizes follow their order).
    pub fn load_objects(opts: &KernelOptions, objs: &[sensor_bpf::Object]) -> Result<Kernel, KernelError> {
        let btf = check_privileges()?;
        mounts::ensure_mounted().map_err(KernelError::Mount)?;
        raise_memlock();
        let cpus = possible_cpus();
        let mut objects = Vec::new();
        for (i, obj) in objs.iter().enumerate() {
            let mut loader = EbpfLoader::new();
            // task storage (per-thread syscall state) has no aya wrapper; only the kernel uses it
            loader
                .allow_unsupported_maps()
                .btf(Some(&btf))
                .override_global("self_tgid", &opts.self_tgid, true)
                .override_global("enabled_types", &opts.enabled_mask, true)
                .override_global("wakeup_bytes", &opts.wakeup_bytes, true)
                .map_max_entries("events", opts.ring_bytes[i.min(opts.ring_bytes.len() - 1)])
                .map_max_entries("scratch_map", cpus);
            let watch_only: u32 = opts.watch_only.into();
            if obj.name == "file" {
                loader.override_global("watch_only", &watch_only, true);
            }
            let mut ebpf =
                loader.load(obj.bytes).map_err(|e| KernelError::Object { object: obj.name, message: e.to_string() })?;
            if obj.name == "file" {
                configure_path_filter(&mut ebpf, opts)?;
            }
            let (attached, skipped, mechanisms) = attach_all(obj.name, &mut ebpf, &btf)?;
            for m in &mechanisms {
                tracing::info!("capability {}: {} ({})", m.capability, m.mechanism, m.kind);
            }
            objects.push(Loaded { name: obj.name, ebpf, attached, skipped, mechanisms });
        }
        Ok(Kernel { objects })
    }

    /// How each capability is observed, over every loaded object.
    pub fn mechanisms(&self) -> Vec<Mechanism> {
        self.objects.iter().flat_map(|o| o.mechanisms.iter().cloned()).collect()
    }

    /// Takes the ring buffers out (for the reader thread).
    pub fn take_rings(&mut self) -> Result<Vec<(&'static str, RingBuf<MapData>)>, KernelError> {
        let mut rings = Vec::new();
        for o in &mut self.objects {
            let map = o.ebpf.take_map("events").ok_or(KernelError::Map { map: "events", message: "missing".into() })?;
            let ring =
                RingBuf::try_from(map).map_err(|e| KernelError::Map { map: "events", message: e.to_string() })?;
            rings.push((o.name, ring));
        }
        Ok(rings)
    }

    /// Records the kernel could not queue, per event type, summed over objects and CPUs.
    pub fn lost_counts(&self) -> [u64; wire::EV_TYPE_MAX as usize] {
        let mut out = [0u64; wire::EV_TYPE_MAX as usize];
        for o in &self.objects {
            let Some(map) = o.ebpf.map("lost") else { continue };
            let Ok(arr) = PerCpuArray::<_, u64>::try_from(map) else { continue };
            for (t, slot) in out.iter_mut().enumerate() {
                if let Ok(vals) = arr.get(&(t as u32), 0) {
                    *slot += vals.iter().sum::<u64>();
                }
            }
        }
        out
    }

    pub fn attached_count(&self) -> usize {
        self.objects.iter().map(|o| o.attached.len()).sum()
    }

    pub fn skipped(&self) -> Vec<(String, String)> {
        self.objects.iter().flat_map(|o| o.skipped.iter().cloned()).collect()
    }
}

/// Programs attached, programs skipped with the reason, and the mechanisms.
type AttachOutcome = (Vec<String>, Vec<(String, String)>, Vec<Mechanism>);

/// A short reason for a log line: the error, then the verifier's last lines.
fn short_reason(e: ProgramError) -> String {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            let tail = log_tail(&verifier_log.to_string(), 2).replace('\n', " | ");
            if tail.is_empty() { format!("load: {io_error}") } else { format!("load: {io_error}; verifier: {tail}") }
        }
        other => error_chain(&other),
    }
}

/// Loads and attaches one fexit program; on failure it is unloaded again.
fn try_fexit(ebpf: &mut Ebpf, btf: &Btf, name: &str) -> Result<(), String> {
    let (_, func) = attach_target(name).ok_or("no attach point known for this program name")?;
    let prog = ebpf.program_mut(name).ok_or("program missing from the object")?;
    let p: &mut FExit = prog.try_into().map_err(|e: ProgramError| e.to_string())?;
    p.load(&func, btf).map_err(short_reason)?;
    if let Err(e) = p.attach() {
        let _ = p.unload();
        return Err(format!("attach to {func}: {}", error_chain(&e)));
    }
    Ok(())
}

/// Tries a variant's preferred programs, all or nothing: Err names the
/// program that failed and why.
fn try_variant(ebpf: &mut Ebpf, btf: &Btf, v: &Variant) -> Result<(), String> {
    if prefer_tracepoints() {
        return Err(format!("{PREFER_ENV}=tracepoint"));
    }
    for (i, name) in v.preferred.iter().enumerate() {
        if let Err(why) = try_fexit(ebpf, btf, name) {
            for done in &v.preferred[..i] {
                if let Some(Ok(p)) = ebpf.program_mut(done).map(<&mut FExit>::try_from) {
                    let _ = p.unload();
                }
            }
            return Err(format!("{name}: {why}"));
        }
    }
    Ok(())
}

fn attach_all(object: &'static str, ebpf: &mut Ebpf, btf: &Btf) -> Result<AttachOutcome, KernelError> {
    let names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
    let mut attached = Vec::new();
    let mut skipped = Vec::new();
    let mut mechanisms = Vec::new();
    // programs not to load: the fallback of a variant that attached, and the
    // preferred programs (each variant handled them already)
    let mut handled: HashSet<&str> = HashSet::new();
    for v in VARIANTS.iter().filter(|v| v.object == object) {
        handled.extend(v.preferred);
        if !v.preferred.iter().all(|p| names.iter().any(|n| n == p)) {
            continue; // not this build of the object (e.g. a test object)
        }
        match try_variant(ebpf, btf, v) {
            Ok(()) => {
                attached.extend(v.preferred.iter().map(|p| p.to_string()));
                handled.extend(v.fallback);
                mechanisms.push(Mechanism {
                    capability: v.capability,
                    kind: v.preferred_kind,
                    mechanism: v.preferred_mechanism,
                    fallback_reason: None,
                });
            }
            Err(why) => {
                tracing::warn!(
                    "capability {}: {} not used ({why}); falling back to {}",
                    v.capability,
                    v.preferred_kind,
                    v.fallback_mechanism
                );
                mechanisms.push(Mechanism {
                    capability: v.capability,
                    kind: "tracepoint",
                    mechanism: v.fallback_mechanism,
                    fallback_reason: Some(why),
                });
            }
        }
    }
    let fixed = FIXED.iter().filter(|f| f.0 == object);
    let fixed: Vec<Mechanism> = fixed
        .map(|&(_, capability, kind, mechanism)| Mechanism { capability, kind, mechanism, fallback_reason: None })
        .collect();
    mechanisms.splice(0..0, fixed);
    for name in names {
        if handled.contains(name.as_str()) {
            continue;
        }
        let Some((kind, target)) = attach_target(&name) else {
            return Err(KernelError::Attach {
                object,
                program: name,
                target: "?".into(),
                message: "no attach point known for this program name".into(),
            });
        };
        let prog = ebpf.program_mut(&name).expect("listed program exists");
        let attach_err =
            |message: String| KernelError::Attach { object, program: name.clone(), target: target.clone(), message };
        match kind {
            "tracepoint" => {
                // syscalls added in newer kernels (openat2, fchmodat2) are optional
                if !tracepoint_exists(&target) {
                    skipped.push((name.clone(), format!("tracepoint {target} does not exist on this kernel")));
                    continue;
                }
                let tp: &mut TracePoint = prog.try_into().map_err(|e: ProgramError| attach_err(e.to_string()))?;
                tp.load().map_err(|e| program_error(object, &name, e))?;
                let (cat, tp_name) = target.split_once('/').expect("category/name");
                tp.attach(cat, tp_name).map_err(|e| attach_err(error_chain(&e)))?;
            }
            "fexit" => {
                // an fexit program outside VARIANTS has no fallback: required
                let p: &mut FExit = prog.try_into().map_err(|e: ProgramError| attach_err(e.to_string()))?;
                p.load(&target, btf).map_err(|e| program_error(object, &name, e))?;
                p.attach().map_err(|e| attach_err(error_chain(&e)))?;
            }
            _ => {
                let tp: &mut BtfTracePoint = prog.try_into().map_err(|e: ProgramError| attach_err(e.to_string()))?;
                tp.load(&target, btf).map_err(|e| program_error(object, &name, e))?;
                tp.attach().map_err(|e| attach_err(error_chain(&e)))?;
            }
        }
        attached.push(name);
    }
    Ok((attached, skipped, mechanisms))
}

fn configure_path_filter(ebpf: &mut Ebpf, opts: &KernelOptions) -> Result<(), KernelError> {
    let map = ebpf
        .map_mut("path_filter")
        .ok_or(KernelError::Map { map: "path_filter", message: "missing from the file object".into() })?;
    let mut trie: LpmTrie<_, [u8; wire::PATH_FILTER_KEY_MAX], u32> =
        LpmTrie::try_from(map).map_err(|e| KernelError::Map { map: "path_filter", message: e.to_string() })?;
    let entries = opts
        .ignore_prefixes
        .iter()
        .map(|p| (p, wire::PATH_FILTER_IGNORE))
        .chain(opts.watch_prefixes.iter().map(|p| (p, wire::PATH_FILTER_WATCH)));
    for (prefix, action) in entries {
        let bytes = prefix.as_bytes();
        let n = bytes.len().min(wire::PATH_FILTER_KEY_MAX);
        let mut data = [0u8; wire::PATH_FILTER_KEY_MAX];
        data[..n].copy_from_slice(&bytes[..n]);
        trie.insert(&Key::new((n * 8) as u32, data), action, 0)
            .map_err(|e| KernelError::Map { map: "path_filter", message: format!("{prefix}: {e}") })?;
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock() {
    let rlim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a struct we own; failure is harmless on modern kernels.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_in_the_objects_has_an_attach_point() {
        for obj in sensor_bpf::all() {
            let parsed = aya_obj_programs(obj.bytes);
            assert!(!parsed.is_empty(), "{} has no programs", obj.name);
            for p in parsed {
                assert!(attach_target(&p).is_some(), "{}: {p} has no attach point", obj.name);
            }
        }
    }

    fn aya_obj_programs(bytes: &[u8]) -> Vec<String> {
        // Parse without loading (no root needed): the ELF symbol table's
        // function names in program sections.
        let obj = aya_obj::Object::parse(bytes).expect("object parses");
        obj.programs.keys().cloned().collect()
    }

    #[test]
    fn every_variant_names_programs_that_exist_in_its_object() {
        for v in VARIANTS {
            let obj = sensor_bpf::all().into_iter().find(|o| o.name == v.object).expect("variant's object exists");
            let progs = aya_obj_programs(obj.bytes);
            for p in v.preferred.iter().chain(v.fallback) {
                assert!(progs.iter().any(|x| x == p), "{}: {p} is not in object {}", v.capability, v.object);
            }
            for p in v.preferred {
                assert_eq!(attach_target(p).map(|t| t.0), Some(v.preferred_kind), "{p}");
            }
        }
    }

    #[test]
    fn verifier_log_tail_keeps_the_end() {
        let log = "a\nb\n\nc\nd\n";
        assert_eq!(log_tail(log, 2), "c\nd");
        assert_eq!(log_tail("", 3), "");
    }
}
