//! Compiles every `bpf/*.bpf.c` into a BPF object in OUT_DIR (embedded by
//! lib.rs), and measures the wire structs of `bpf/include/events.h` with the
//! host C compiler so the Rust mirror types can be checked against them.
//!
//! Needs clang (honours `$CLANG`, else `clang`, else `clang-19`), libbpf's
//! headers (libbpf-dev) and, unless `bpf/include/vmlinux.h` exists, bpftool to
//! generate vmlinux.h from the build machine's BTF.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn find_tool(env_var: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(v) = env::var(env_var) {
        return Some(v);
    }
    candidates.iter().find_map(|c| {
        let ok = Command::new(c).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        ok.then(|| c.to_string())
    })
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

fn vmlinux_dir(manifest: &Path, out: &Path) -> PathBuf {
    let include = manifest.join("bpf/include");
    if include.join("vmlinux.h").exists() {
        return include;
    }
    let dir = out.join("vmlinux");
    let header = dir.join("vmlinux.h");
    if !header.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let bpftool = find_tool("BPFTOOL", &["bpftool", "/usr/sbin/bpftool"]).expect(
            "bpftool not found: install it (apt-get install bpftool) or set $BPFTOOL; \
             it generates vmlinux.h from /sys/kernel/btf/vmlinux",
        );
        let btf = "/sys/kernel/btf/vmlinux";
        assert!(
            Path::new(btf).exists(),
            "{btf} is missing: this kernel has no BTF, so vmlinux.h cannot be generated; \
             put one at sensor-bpf/bpf/include/vmlinux.h"
        );
        let text = run(Command::new(&bpftool).args(["btf", "dump", "file", btf, "format", "c"]), "bpftool btf dump");
        std::fs::write(&header, text).unwrap();
    }
    dir
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let bpf_dir = manifest.join("bpf");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=BPFTOOL");

    let clang = find_tool("CLANG", &["clang", "clang-19"])
        .expect("no clang found: install clang-19 (apt-get install clang-19 libbpf-dev) or set $CLANG");
    let vmlinux = vmlinux_dir(&manifest, &out);
    let strip = find_tool("LLVM_STRIP", &["llvm-strip", "llvm-strip-19"]);

    // bpf/testdata/ holds deliberately broken programs for the loader's tests
    let mut sources: Vec<PathBuf> = [bpf_dir.clone(), bpf_dir.join("testdata")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let stem = src.file_name().unwrap().to_string_lossy().replace(".bpf.c", "");
        let obj = out.join(format!("{stem}.bpf.o"));
        run(
            Command::new(&clang)
                .args(["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86"])
                .args(["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"])
                .arg("-I")
                .arg(bpf_dir.join("include"))
                .arg("-I")
                .arg(&vmlinux)
                .arg("-c")
                .arg(src)
                .arg("-o")
                .arg(&obj),
            &format!("compiling {}", src.display()),
        );
        // Drop DWARF, keep BTF (aya needs it): the embedded objects shrink ~5x.
        if let Some(strip) = &strip {
            run(Command::new(strip).arg("-g").arg(&obj), "llvm-strip");
        }
    }

    measure_layout(&manifest, &out);
}

/// Compiles and runs a host program that prints the size and field offsets of
/// every wire struct, as Rust constants the layout tests compare against.
fn measure_layout(manifest: &Path, out: &Path) {
    let structs: &[(&str, &[&str])] = &[
        ("event_header", &["ts_ns", "cgroup_id", "start_time", "type", "pid", "tid", "ppid", "uid", "gid", "comm"]),
        (
            "exec_event",
            &[
                "euid",
                "egid",
                "args_len",
                "argc",
                "exe_len",
                "cwd_len",
                "filename_len",
                "flags",
                "exe_ctime_ns",
                "data",
            ],
        ),
        ("fork_event", &["child_pid", "child_tid", "child_start_time"]),
        ("exit_event", &["exit_code"]),
        (
            "file_event",
            &[
                "result",
                "flags",
                "mode",
                "syscall_nr",
                "path_len",
                "base_len",
                "path2_len",
                "base2_len",
                "info",
                "data",
            ],
        ),
        (
            "net_event",
            &[
                "saddr",
                "daddr",
                "sport",
                "dport",
                "family",
                "protocol",
                "direction",
                "error",
                "sock_id",
                "latency_ns",
                "duration_ns",
                "bytes_sent",
                "bytes_received",
                "srtt_us",
                "retransmits",
            ],
        ),
        ("dns_event", &["saddr", "daddr", "sport", "dport", "family", "direction", "payload_len", "total_len", "data"]),
        ("syscall_event", &["result", "args", "syscall_nr", "str1_len", "str2_len", "str3_len", "flags", "data"]),
        (
            "l7_event",
            &[
                "sock_id",
                "saddr",
                "daddr",
                "sport",
                "dport",
                "family",
                "direction",
                "protocol",
                "total_len",
                "payload_len",
                "data",
            ],
        ),
    ];
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"events.h\"\nint main(void) {\n");
    for (name, fields) in structs {
        let upper = name.to_uppercase();
        c.push_str(&format!("printf(\"pub const {upper}_SIZE: usize = %zu;\\n\", sizeof(struct {name}));\n"));
        for f in *fields {
            let fu = f.to_uppercase();
            c.push_str(&format!(
                "printf(\"pub const {upper}_{fu}: usize = %zu;\\n\", offsetof(struct {name}, {f}));\n"
            ));
        }
    }
    c.push_str("return 0; }\n");
    let src = out.join("layout.c");
    let exe = out.join("layout");
    std::fs::write(&src, c).unwrap();
    let cc = env::var("HOST_CC").unwrap_or_else(|_| "cc".into());
    run(
        Command::new(&cc).arg("-I").arg(manifest.join("bpf/include")).arg(&src).arg("-o").arg(&exe),
        "compiling the layout probe",
    );
    let text = run(&mut Command::new(&exe), "running the layout probe");
    std::fs::write(out.join("layout.rs"), text).unwrap();
}
