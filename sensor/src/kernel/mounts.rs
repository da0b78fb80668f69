//! The pseudo filesystems the loader needs: tracefs (tracepoint ids) and
//! bpffs. Minimal containers and fresh VMs often lack them; the sensor mounts
//! them itself rather than asking the operator to.

use std::ffi::CString;
use std::path::Path;

fn is_mounted(target: &str, fstype: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let mut f = l.split_whitespace();
                let (_, t, ty) = (f.next(), f.next(), f.next());
                t == Some(target) && ty == Some(fstype)
            })
        })
        .unwrap_or(false)
}

fn mount(fstype: &str, target: &str) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("cannot create {target}: {e}"))?;
    let src = CString::new(fstype).unwrap();
    let tgt = CString::new(target).unwrap();
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), src.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(format!("mount -t {fstype} {fstype} {target}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Mounts tracefs and bpffs where they are missing.
pub fn ensure_mounted() -> Result<(), String> {
    let tracefs_ok =
        Path::new("/sys/kernel/tracing/events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists();
    if !tracefs_ok {
        mount("tracefs", "/sys/kernel/tracing")?;
    }
    if !is_mounted("/sys/fs/bpf", "bpf") {
        mount("bpf", "/sys/fs/bpf")?;
    }
    Ok(())
}
