//! `sensor probe`: what this kernel offers, found by trying, and which
//! mechanism the sensor uses for each capability.

use aya::programs::{BtfTracePoint, FEntry, KProbe, Lsm, RawTracePoint, TracePoint};
use aya::{Btf, EbpfLoader};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub available: bool,
    /// Why not (or what was found), in the kernel's own words where possible.
    pub detail: String,
}

/// How the sensor observes one capability on this kernel: found by loading
/// the sensor's own objects, exactly as `sensor run` does (see
/// `kernel::VARIANTS`), not predicted from the feature list.
#[derive(Debug, Serialize)]
pub struct Capability {
    pub capability: &'static str,
    /// Program type: fexit, tracepoint, tp_btf; "unavailable" when loading failed.
    pub kind: &'static str,
    pub mechanism: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub kernel: String,
    pub root: bool,
    pub features: Vec<Feature>,
    pub capabilities: Vec<Capability>,
}

fn feature(name: &'static str, r: Result<String, String>) -> Feature {
    match r {
        Ok(detail) => Feature { name, available: true, detail },
        Err(detail) => Feature { name, available: false, detail },
    }
}

fn cgroup2_path() -> Result<String, String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|e| e.to_string())?;
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| f[1].to_string())
        })
        .ok_or_else(|| "no cgroup2 filesystem mounted".into())
}

fn lsm_list() -> Result<String, String> {
    let path = "/sys/kernel/security/lsm";
    if !Path::new(path).exists() {
        // securityfs may simply not be mounted yet
        let src = c"securityfs";
        let tgt = c"/sys/kernel/security";
        // SAFETY: valid NUL-terminated strings; failure is reported below.
        unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), src.as_ptr(), 0, std::ptr::null()) };
    }
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("{path}: {e}"))
}

fn first_line(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    let s = s.split("Verifier output").next().unwrap_or(&s).trim().to_string();
    s.lines().next().unwrap_or("").to_string()
}

/// Loads the probe object and tries each program type.
fn program_types(btf: &Btf) -> Vec<Feature> {
    let mut out = Vec::new();
    let mut ebpf = match EbpfLoader::new().btf(Some(btf)).load(sensor_bpf::probe().bytes) {
        Ok(e) => e,
        Err(e) => {
            out.push(feature("bpf_object", Err(first_line(e))));
            return out;
        }
    };
    out.push(feature("ringbuf", Ok("BPF_MAP_TYPE_RINGBUF created".into())));

    let r = (|| -> Result<String, String> {
        let p: &mut TracePoint = ebpf.program_mut("probe_tracepoint").unwrap().try_into().map_err(first_line)?;
        p.load().map_err(first_line)?;
        p.attach("syscalls", "sys_enter_getppid").map_err(first_line)?;
        Ok("loaded and attached syscalls/sys_enter_getppid".into())
    })();
    out.push(feature("tracepoint", r));

    let r = (|| -> Result<String, String> {
        let p: &mut RawTracePoint = ebpf.program_mut("probe_raw_tracepoint").unwrap().try_into().map_err(first_line)?;
        p.load().map_err(first_line)?;
        p.attach("sys_enter").map_err(first_line)?;
        Ok("loaded and attached sys_enter".into())
    })();
    out.push(feature("raw_tracepoint", r));

    let r = (|| -> Result<String, String> {
        let p: &mut BtfTracePoint = ebpf.program_mut("probe_tp_btf").unwrap().try_into().map_err(first_line)?;
        p.load("sched_process_exec", btf).map_err(first_line)?;
        p.attach().map_err(first_line)?;
        Ok("loaded and attached sched_process_exec".into())
    })();
    out.push(feature("tp_btf", r));

    let r = (|| -> Result<String, String> {
        let p: &mut FEntry = ebpf.program_mut("probe_fentry").unwrap().try_into().map_err(first_line)?;
        p.load("do_unlinkat", btf).map_err(first_line)?;
        p.attach().map_err(first_line)?;
        Ok("loaded and attached to do_unlinkat".into())
    })();
    out.push(feature("fentry", r));

    let lsm_enabled = lsm_list().map(|l| l.split(',').any(|x| x == "bpf"));
    let r = (|| -> Result<String, String> {
        let p: &mut Lsm = ebpf.program_mut("probe_lsm").unwrap().try_into().map_err(first_line)?;
        p.load("bprm_check_security", btf).map_err(first_line)?;
        if lsm_enabled != Ok(true) {
            return Err(format!(
                "program loads, but \"bpf\" is not in the active LSM list ({}); boot with lsm=...,bpf",
                lsm_list().unwrap_or_else(|e| e)
            ));
        }
        p.attach().map_err(first_line)?;
        Ok("loaded and attached bprm_check_security".into())
    })();
    out.push(feature("bpf_lsm", r));

    let r = (|| -> Result<String, String> {
        let p: &mut KProbe = ebpf.program_mut("probe_kprobe").unwrap().try_into().map_err(first_line)?;
        p.load().map_err(first_line)?;
        p.attach("do_unlinkat", 0).map_err(first_line)?;
        Ok("loaded and attached to do_unlinkat".into())
    })();
    out.push(feature("kprobe", r));
    out
}

/// Loads and attaches the sensor's objects as `sensor run` would (small
/// rings, no filters), reads which mechanism each capability got, and
/// detaches everything again.
fn sensor_mechanisms() -> Vec<Capability> {
    let opts = super::KernelOptions {
        self_tgid: std::process::id(),
        enabled_mask: !0,
        wakeup_bytes: 1 << 20,
        ring_bytes: [64 << 10; 3],
        ignore_prefixes: Vec::new(),
        watch_prefixes: Vec::new(),
        watch_only: false,
    };
    match super::Kernel::load(&opts) {
        Ok(kernel) => kernel
            .mechanisms()
            .into_iter()
            .map(|m| Capability {
                capability: m.capability,
                kind: m.kind,
                mechanism: m.mechanism.to_string(),
                fallback_reason: m.fallback_reason,
            })
            .collect(),
        Err(e) => vec![Capability {
            capability: "all",
            kind: "unavailable",
            mechanism: format!("the sensor's programs do not load: {e}"),
            fallback_reason: None,
        }],
    }
}

pub fn run_probe() -> ProbeReport {
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut features = Vec::new();
    let btf = Btf::from_sys_fs();
    features.push(feature(
        "btf",
        btf.as_ref()
            .map(|_| "/sys/kernel/btf/vmlinux".to_string())
            .map_err(|e| format!("/sys/kernel/btf/vmlinux: {e}")),
    ));
    let _ = super::mounts::ensure_mounted();
    match (&btf, root) {
        (Ok(btf), true) => features.extend(program_types(btf)),
        (_, false) => features.push(feature("bpf_programs", Err("not root: program types cannot be tried".into()))),
        (Err(_), true) => features.push(feature("bpf_programs", Err("no BTF: CO-RE programs cannot load".into()))),
    }
    features.push(feature("cgroup_v2", cgroup2_path()));
    features.push(feature(
        "uprobe",
        if Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
            Ok("uprobe PMU present".into())
        } else {
            Err("no uprobe PMU (/sys/bus/event_source/devices/uprobe)".into())
        },
    ));
    features.push(feature("lsm_list", lsm_list()));

    let capabilities = match (&btf, root) {
        (Ok(_), true) => sensor_mechanisms(),
        _ => vec![Capability {
            capability: "all",
            kind: "unavailable",
            mechanism: "not tried: needs root and BTF".into(),
            fallback_reason: None,
        }],
    };
    ProbeReport { kernel, root, features, capabilities }
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "kernel {} (running as {})", self.kernel, if self.root { "root" } else { "non-root" })?;
        writeln!(f, "\nfeatures:")?;
        for x in &self.features {
            writeln!(f, "  {:<15} {:<4} {}", x.name, if x.available { "yes" } else { "no" }, x.detail)?;
        }
        writeln!(f, "\nmechanism per capability:")?;
        for c in &self.capabilities {
            writeln!(f, "  {:<13} {:<10} {}", c.capability, c.kind, c.mechanism)?;
            if let Some(why) = &c.fallback_reason {
                writeln!(f, "  {:<13} {:<10} (preferred variant not used: {why})", "", "")?;
            }
        }
        Ok(())
    }
}
