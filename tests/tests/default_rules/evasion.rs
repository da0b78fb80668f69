//! Defense evasion and impact: log tampering, history clearing, secure
//! deletion, stopping security tools.

use crate::{NOW, check, ev, path_is, pid_is, sensor, token};
use sensor_e2e::rules::{Scratch, in_private_overlay_ok, run, run_ok};
use sensor_e2e::{get, s};
use std::process::Command;

#[test]
fn log_tampering() {
    let sensor = sensor();
    let t = token();
    let removed = format!("/var/log/sensor-e2e-{t}.log");
    // appending is how logs are written (near-miss); removing one is tampering
    let script = format!("echo line >> {removed}; exec /usr/bin/rm {removed}");
    let rm = in_private_overlay_ok(&["/var/log"], &["/bin/sh", "-c", &script]);
    let a = sensor.wait_for_alert("log_tampering", |e| pid_is(e, rm) && s(e, &["type"]) == "unlink");
    check(&a, "log_tampering", "high");
    assert_eq!(ev(&a, &["file", "path"]), removed);
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/rm");
    sensor.no_alert("log_tampering", NOW, |e| pid_is(e, rm) && s(e, &["type"]) == "open");
    // truncation through O_TRUNC
    let truncated = format!("/var/log/sensor-e2e-{t}-trunc.log");
    let sh = in_private_overlay_ok(&["/var/log"], &["/bin/sh", "-c", &format!(": > {truncated}")]);
    let a = sensor.wait_for_alert("log_tampering", |e| pid_is(e, sh) && path_is(e, &truncated));
    check(&a, "log_tampering", "high");
    assert_eq!(ev(&a, &["type"]), "open");
    assert!(!std::path::Path::new(&truncated).exists(), "the overlay leaked into the real /var/log");
}

#[test]
fn shell_history_tampering() {
    let sensor = sensor();
    let scratch = Scratch::new("history");
    let home = scratch.home();
    let history = home.join(".bash_history");
    let history = history.to_str().unwrap();
    // a shell appending to its history is normal (near-miss)
    let near = run_ok(Command::new("/bin/sh").arg("-c").arg(format!("echo 'ls -la' >> {history}")));
    let rm = run_ok(Command::new("/usr/bin/rm").arg(history));
    let a = sensor.wait_for_alert("shell_history_tampering", |e| pid_is(e, rm) && path_is(e, history));
    check(&a, "shell_history_tampering", "high");
    assert_eq!(ev(&a, &["type"]), "unlink");
    let ln = run_ok(Command::new("/usr/bin/ln").args(["-s", "/dev/null", history]));
    let a = sensor.wait_for_alert("shell_history_tampering", |e| pid_is(e, ln) && s(e, &["type"]) == "symlink");
    check(&a, "shell_history_tampering", "high");
    assert_eq!(ev(&a, &["file", "new_path"]), history);
    let zsh = home.join(".zsh_history");
    std::fs::OpenOptions::new().create(true).append(true).open(&zsh).unwrap();
    let zsh = zsh.to_str().unwrap();
    let trunc = run_ok(Command::new("/bin/sh").arg("-c").arg(format!(": > {zsh}")));
    let a = sensor.wait_for_alert("shell_history_tampering", |e| pid_is(e, trunc) && path_is(e, zsh));
    check(&a, "shell_history_tampering", "high");
    sensor.no_alert("shell_history_tampering", NOW, |e| pid_is(e, near));
}

#[test]
fn secure_delete_tool() {
    let sensor = sensor();
    let scratch = Scratch::new("shred");
    let secret = scratch.str("secret.txt");
    std::fs::write(&secret, "evidence\n").unwrap();
    // dd writing an ordinary file is not wiping a disk
    let near = run_ok(Command::new("/usr/bin/dd").args([
        "if=/dev/zero",
        &format!("of={}", scratch.str("img")),
        "bs=512",
        "count=1",
        "status=none",
    ]));
    let pid = run_ok(Command::new("/usr/bin/shred").args(["-u", &secret]));
    let a = sensor.wait_for_alert("secure_delete_tool", |e| pid_is(e, pid) && s(e, &["type"]) == "exec");
    check(&a, "secure_delete_tool", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/shred");
    assert!(!std::path::Path::new(&secret).exists());
    sensor.no_alert("secure_delete_tool", NOW, |e| pid_is(e, near));
}

#[test]
fn security_tool_tampering() {
    let sensor = sensor();
    // signal 0 only checks that the processes exist: nothing is stopped
    let (near, _) = run(Command::new("/usr/bin/pkill").args(["-0", "-x", &format!("e2e-nothing-{}", token())]));
    let (pkill, _) = run(Command::new("/usr/bin/pkill").args(["-0", "-x", "auditd"]));
    let (killall, _) = run(Command::new("/usr/bin/killall").args(["-q", "-0", "sensor"]));
    let a = sensor.wait_for_alert("security_tool_tampering", |e| pid_is(e, pkill) && s(e, &["type"]) == "exec");
    check(&a, "security_tool_tampering", "high");
    // pkill is pgrep under another name on Debian: argv[0] and comm say pkill
    assert_eq!(get(&a, &["event", "process", "args"])[0], "/usr/bin/pkill");
    assert_eq!(ev(&a, &["process", "comm"]), "pkill");
    let a = sensor.wait_for_alert("security_tool_tampering", |e| pid_is(e, killall) && s(e, &["type"]) == "exec");
    check(&a, "security_tool_tampering", "high");
    sensor.no_alert("security_tool_tampering", NOW, |e| pid_is(e, near));
}
