//! Persistence and privilege: writes to binary dirs, /etc, cron, systemd
//! units, shell rc files, ld.so.preload, authorized_keys, accounts; setuid
//! bits, kernel modules, BPF, ptrace, links to sensitive files.
//!
//! System paths are written for real, in a private mount namespace where the
//! directory has a throwaway overlay layer (`in_private_overlay`): the sensor
//! reports `/etc/cron.d/...`, the real directory is untouched.

use crate::{NOW, check, ev, me, path_is, pid_is, sensor, token, wait_for_graded};
use sensor_e2e::rules::{Reaper, Scratch, in_private_overlay_ok, python, run, run_ok};
use sensor_e2e::{get, s, u};
use std::process::Command;

#[test]
fn write_below_binary_dir() {
    let sensor = sensor();
    let target = format!("/usr/sbin/sensor-e2e-{}", token());
    let pid = in_private_overlay_ok(&["/usr/sbin"], &["/usr/bin/cp", "/usr/bin/true", &target]);
    let a = sensor.wait_for_alert("write_below_binary_dir", |e| pid_is(e, pid) && path_is(e, &target));
    check(&a, "write_below_binary_dir", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cp");
    assert!(!std::path::Path::new(&target).exists(), "the overlay leaked into the real /usr/sbin");
}

#[test]
fn write_below_etc() {
    let sensor = sensor();
    let t = token();
    let conf = format!("/etc/sensor-e2e-{t}.conf");
    let cron = format!("/etc/cron.d/sensor-e2e-{t}");
    // the cron file is the near-miss: a more specific rule owns it
    let script = format!("echo 'x=1' > {conf}; echo '* * * * * root true' > {cron}");
    let pid = in_private_overlay_ok(&["/etc"], &["/bin/sh", "-c", &script]);
    let a = sensor.wait_for_alert("write_below_etc", |e| pid_is(e, pid) && path_is(e, &conf));
    check(&a, "write_below_etc", "medium");
    sensor.wait_for_alert("cron_modified", |e| pid_is(e, pid) && path_is(e, &cron));
    sensor.no_alert("write_below_etc", NOW, |e| pid_is(e, pid) && path_is(e, &cron));
    assert!(!std::path::Path::new(&conf).exists(), "the overlay leaked into the real /etc");
}

#[test]
fn cron_modified() {
    let sensor = sensor();
    let scratch = Scratch::new("cron");
    let job = scratch.str("job");
    std::fs::write(&job, "* * * * * root /tmp/payload\n").unwrap();
    let target = format!("/etc/cron.d/sensor-e2e-{}", token());
    let pid = in_private_overlay_ok(&["/etc"], &["/usr/bin/cp", &job, &target]);
    let a = sensor.wait_for_alert("cron_modified", |e| pid_is(e, pid) && path_is(e, &target));
    check(&a, "cron_modified", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cp");
}

#[test]
fn systemd_unit_modified() {
    let sensor = sensor();
    let scratch = Scratch::new("systemd");
    let unit = scratch.str("evil.service");
    std::fs::write(&unit, "[Service]\nExecStart=/tmp/payload\n").unwrap();
    let user_dir = scratch.home().join(".config/systemd/user");
    std::fs::create_dir_all(&user_dir).unwrap();
    let t = token();
    // near-miss: not a unit file
    let notes = user_dir.join(format!("notes-{t}.txt"));
    let near = run_ok(Command::new("/usr/bin/cp").arg(&unit).arg(&notes));
    let user_unit = user_dir.join(format!("sensor-e2e-{t}.service"));
    let user_unit = user_unit.to_str().unwrap();
    let pid = run_ok(Command::new("/usr/bin/cp").arg(&unit).arg(user_unit));
    let a = sensor.wait_for_alert("systemd_unit_modified", |e| pid_is(e, pid) && path_is(e, user_unit));
    check(&a, "systemd_unit_modified", "high");
    sensor.no_alert("systemd_unit_modified", NOW, |e| pid_is(e, near));
    let system_unit = format!("/etc/systemd/system/sensor-e2e-{t}.service");
    let pid = in_private_overlay_ok(&["/etc"], &["/usr/bin/cp", &unit, &system_unit]);
    let a = sensor.wait_for_alert("systemd_unit_modified", |e| pid_is(e, pid) && path_is(e, &system_unit));
    check(&a, "systemd_unit_modified", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cp");
}

#[test]
fn shell_rc_modified() {
    let sensor = sensor();
    let scratch = Scratch::new("shellrc");
    let bashrc = scratch.home().join(".bashrc");
    let bashrc = bashrc.to_str().unwrap();
    // reading an rc file is what every shell does
    let near = run_ok(Command::new("/usr/bin/cat").arg("/etc/skel/.bashrc"));
    let pid = run_ok(Command::new("/bin/sh").arg("-c").arg(format!("echo 'alias sudo=/tmp/.x' >> {bashrc}")));
    let a = sensor.wait_for_alert("shell_rc_modified", |e| pid_is(e, pid) && path_is(e, bashrc));
    check(&a, "shell_rc_modified", "medium");
    assert_eq!(ev(&a, &["type"]), "open");
    sensor.no_alert("shell_rc_modified", NOW, |e| pid_is(e, near));
}

#[test]
fn ld_preload_modified() {
    let sensor = sensor();
    // the library does not exist: even a later exec in that namespace only warns
    let script = format!("echo /nonexistent/sensor-e2e-{}.so > /etc/ld.so.preload", token());
    let pid = in_private_overlay_ok(&["/etc"], &["/bin/sh", "-c", &script]);
    let a = sensor.wait_for_alert("ld_preload_modified", |e| pid_is(e, pid) && path_is(e, "/etc/ld.so.preload"));
    check(&a, "ld_preload_modified", "critical");
    assert_eq!(ev(&a, &["type"]), "open");
}

#[test]
fn ssh_authorized_keys_modified() {
    let sensor = sensor();
    let scratch = Scratch::new("authkeys");
    let ssh = scratch.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let known = ssh.join("known_hosts");
    let keys = ssh.join("authorized_keys");
    let keys = keys.to_str().unwrap();
    let near =
        run_ok(Command::new("/bin/sh").arg("-c").arg(format!("echo 'host ssh-ed25519 AAAA' >> {}", known.display())));
    let pid =
        run_ok(Command::new("/bin/sh").arg("-c").arg(format!("echo 'ssh-ed25519 AAAAC3Nza e2e@attacker' >> {keys}")));
    let a = sensor.wait_for_alert("ssh_authorized_keys_modified", |e| pid_is(e, pid) && path_is(e, keys));
    check(&a, "ssh_authorized_keys_modified", "high");
    sensor.no_alert("ssh_authorized_keys_modified", NOW, |e| pid_is(e, near));
}

#[test]
fn user_or_group_created() {
    let sensor = sensor();
    let t = token();
    let user = format!("sre2e{}", &t[..t.len().min(8)]);
    // /etc and /var overlaid: the account exists only in the throwaway layer
    let useradd = in_private_overlay_ok(
        &["/etc", "/var"],
        &["/usr/sbin/useradd", "-M", "-N", "-l", "-s", "/usr/sbin/nologin", &user],
    );
    let a = sensor.wait_for_alert("user_or_group_created", |e| pid_is(e, useradd) && s(e, &["type"]) == "exec");
    check(&a, "user_or_group_created", "medium");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/sbin/useradd");
    let group = format!("{user}g");
    let groupadd = in_private_overlay_ok(&["/etc", "/var"], &["/usr/sbin/groupadd", &group]);
    let a = sensor.wait_for_alert("user_or_group_created", |e| pid_is(e, groupadd) && s(e, &["type"]) == "exec");
    check(&a, "user_or_group_created", "medium");
    // useradd writing /etc/passwd is the account tools' job, not tampering
    sensor.no_alert("account_database_modified", NOW, |e| pid_is(e, useradd));
    assert!(Command::new("id").arg(&user).output().unwrap().status.code() != Some(0), "user leaked to the host");
}

#[test]
fn account_database_modified() {
    let sensor = sensor();
    let near = run_ok(Command::new("/usr/bin/cat").arg("/etc/passwd"));
    // open for append (writes nothing: stdin is /dev/null)
    let tee = in_private_overlay_ok(&["/etc"], &["/usr/bin/tee", "-a", "/etc/passwd"]);
    let a = sensor.wait_for_alert("account_database_modified", |e| pid_is(e, tee) && path_is(e, "/etc/passwd"));
    check(&a, "account_database_modified", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/tee");
    // vipw-style replacement by rename, by a program that is not an account tool
    let mv = in_private_overlay_ok(
        &["/etc"],
        &["/bin/sh", "-c", "cp /etc/shadow /etc/shadow.e2e && exec mv /etc/shadow.e2e /etc/shadow"],
    );
    let a = sensor.wait_for_alert("account_database_modified", |e| pid_is(e, mv) && s(e, &["type"]) == "rename");
    check(&a, "account_database_modified", "high");
    assert_eq!(ev(&a, &["file", "new_path"]), "/etc/shadow");
    sensor.no_alert("account_database_modified", NOW, |e| pid_is(e, near));
}

#[test]
fn setuid_bit_set() {
    let sensor = sensor();
    let scratch = Scratch::new("setuid");
    let plain = scratch.str("plain");
    let suid = scratch.str("suid");
    std::fs::copy("/usr/bin/true", &plain).unwrap();
    std::fs::copy("/usr/bin/true", &suid).unwrap();
    let near = run_ok(Command::new("/usr/bin/chmod").args(["755", &plain]));
    let pid = run_ok(Command::new("/usr/bin/chmod").args(["4755", &suid]));
    let a = sensor.wait_for_alert("setuid_bit_set", |e| pid_is(e, pid) && path_is(e, &suid));
    check(&a, "setuid_bit_set", "high");
    assert_eq!(ev(&a, &["type"]), "chmod");
    assert_eq!(u(&a["event"], &["file", "mode"]) & 0o7777, 0o4755);
    sensor.no_alert("setuid_bit_set", NOW, |e| pid_is(e, near));
}

#[test]
fn kernel_module_load() {
    let sensor = sensor();
    let t = token();
    // removal is not loading (and this module does not exist: nothing happens)
    let (near, _) = run(Command::new("/usr/sbin/modprobe").args(["-r", &format!("sensor_e2e_{t}")]));
    let ko = format!("/nonexistent/sensor_e2e_{t}.ko");
    let (insmod, out) = run(Command::new("/usr/sbin/insmod").arg(&ko));
    assert!(!out.status.success(), "insmod of a missing file succeeded?");
    let a = sensor.wait_for_alert("kernel_module_load", |e| pid_is(e, insmod) && s(e, &["type"]) == "exec");
    check(&a, "kernel_module_load", "high");
    assert_eq!(get(&a, &["event", "process", "args"])[1], ko.as_str());
    sensor.no_alert("kernel_module_load", NOW, |e| pid_is(e, near));

    // the syscall itself, where the kernel has module support
    let has_tracepoint = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|t| std::path::Path::new(t).join("events/syscalls/sys_enter_finit_module").exists());
    if has_tracepoint {
        let f = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: /dev/null is not a module: the kernel refuses it.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
        assert!(rc < 0);
        let a = sensor.wait_for_alert("kernel_module_load", |e| pid_is(e, me()) && s(e, &["type"]) == "module_load");
        check(&a, "kernel_module_load", "high");
    } else {
        eprintln!("NOTE: no finit_module tracepoint (no loadable-module support): only the insmod exec is tested");
    }
}

#[test]
fn bpf_program_load() {
    let sensor = sensor();
    // BPF_PROG_LOAD of a two-instruction socket filter (r0 = 0; exit), named
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        pad: [u8; 64],
    }
    let insns: [u64; 2] = [0xb7, 0x95];
    let name = *b"sensor_e2e_load\0";
    let mut attr = ProgLoad {
        prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: c"GPL".as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        pad: [0; 64],
    };
    // SAFETY: a valid bpf_attr for BPF_PROG_LOAD whose pointers outlive the call.
    let fd =
        unsafe { libc::syscall(libc::SYS_bpf, 5, &mut attr as *mut ProgLoad, std::mem::size_of::<ProgLoad>() as u32) };
    assert!(fd >= 0, "BPF_PROG_LOAD: {}", std::io::Error::last_os_error());
    // SAFETY: closing the program fd we own.
    unsafe { libc::close(fd as i32) };
    let a = sensor.wait_for_alert("bpf_program_load", |e| {
        pid_is(e, me()) && s(e, &["type"]) == "bpf" && s(e, &["syscall", "prog_name"]) == "sensor_e2e_load"
    });
    check(&a, "bpf_program_load", "medium");
    assert_eq!(ev(&a, &["syscall", "cmd"]), "BPF_PROG_LOAD");
}

#[test]
fn ptrace_attach() {
    let sensor = sensor();
    let mut reaper = Reaper::default();
    let target = reaper.add(Command::new("/usr/bin/sleep").arg("60").spawn().unwrap());
    // SAFETY: seize and detach our own child; its memory is not touched.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, target as i32, 0, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    unsafe { libc::ptrace(libc::PTRACE_DETACH, target as i32, 0, 0) };
    let a = wait_for_graded("ptrace_attach", "high", |e| {
        pid_is(e, me()) && s(e, &["type"]) == "ptrace" && u(e, &["syscall", "target_pid"]) == target as u64
    });
    assert_eq!(ev(&a, &["syscall", "request_name"]), "PTRACE_SEIZE");
    // a debugger doing the same: low
    let strace = run_ok(Command::new("/usr/bin/strace").args(["-f", "-o", "/dev/null", "/usr/bin/true"]));
    let a = wait_for_graded("ptrace_attach", "low", |e| pid_is(e, strace) && s(e, &["type"]) == "ptrace");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/strace");
    // the debugger's tracee is not a TRACEME by a stray parent
    sensor.no_alert("ptrace_traceme", NOW, |e| u(e, &["process", "ppid"]) == strace as u64);
}

#[test]
fn ptrace_traceme() {
    let sensor = sensor();
    let pid = run_ok(&mut python("import ctypes\nassert ctypes.CDLL(None, use_errno=True).ptrace(0, 0, 0, 0) == 0\n"));
    let a = sensor.wait_for_alert("ptrace_traceme", |e| pid_is(e, pid) && s(e, &["type"]) == "ptrace");
    check(&a, "ptrace_traceme", "medium");
    assert_eq!(ev(&a, &["syscall", "request_name"]), "PTRACE_TRACEME");
}

#[test]
fn link_to_sensitive_file() {
    let sensor = sensor();
    let scratch = Scratch::new("links");
    let near = run_ok(Command::new("/usr/bin/ln").args(["-s", "/etc/hostname", &scratch.str("host")]));
    let link = scratch.str("sh4dow");
    let pid = run_ok(Command::new("/usr/bin/ln").args(["-s", "/etc/shadow", &link]));
    let a = sensor.wait_for_alert("link_to_sensitive_file", |e| pid_is(e, pid) && s(e, &["type"]) == "symlink");
    check(&a, "link_to_sensitive_file", "high");
    assert_eq!(ev(&a, &["file", "target"]), "/etc/shadow");
    assert_eq!(ev(&a, &["file", "new_path"]), link);
    sensor.no_alert("link_to_sensitive_file", NOW, |e| pid_is(e, near));
}
