//! Credential access: shadow, auth files, SSH keys, path traversal,
//! credential searches, cloud credentials, other processes' memory.

use crate::{NOW, check, ev, path_is, pid_is, sensor};
use sensor_e2e::rules::{Reaper, Scratch, python, run, run_ok};
use sensor_e2e::s;
use std::process::Command;

fn cat(path: &str) -> Command {
    let mut c = Command::new("/usr/bin/cat");
    c.arg(path);
    c
}

#[test]
fn read_shadow() {
    let sensor = sensor();
    let near = run_ok(&mut cat("/etc/passwd"));
    let pid = run_ok(&mut cat("/etc/shadow"));
    let a = sensor.wait_for_alert("read_shadow", |e| pid_is(e, pid) && path_is(e, "/etc/shadow"));
    check(&a, "read_shadow", "high");
    assert_eq!(ev(&a, &["type"]), "open");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cat");
    sensor.no_alert("read_shadow", NOW, |e| pid_is(e, near));
}

#[test]
fn read_sensitive_auth_file() {
    let sensor = sensor();
    // sudo is not installed everywhere; PAM configuration is
    let target = ["/etc/sudoers", "/etc/pam.d/common-auth", "/etc/pam.d/login", "/etc/pam.d/other"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("neither /etc/sudoers nor a PAM file");
    let near = run_ok(&mut cat("/etc/passwd"));
    let pid = run_ok(&mut cat(target));
    let a = sensor.wait_for_alert("read_sensitive_auth_file", |e| pid_is(e, pid) && path_is(e, target));
    check(&a, "read_sensitive_auth_file", "medium");
    assert_eq!(ev(&a, &["type"]), "open");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cat");
    sensor.no_alert("read_sensitive_auth_file", NOW, |e| pid_is(e, near));
}

#[test]
fn read_ssh_private_key() {
    let sensor = sensor();
    let scratch = Scratch::new("sshkey");
    let ssh = scratch.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    let key = key.to_str().unwrap();
    let public = format!("{key}.pub");
    // ssh-keygen writing and reading its own key is the allowlisted case
    let keygen = run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", key]));
    let near = run_ok(&mut cat(&public));
    let pid = run_ok(&mut cat(key));
    let a = sensor.wait_for_alert("read_ssh_private_key", |e| pid_is(e, pid) && path_is(e, key));
    check(&a, "read_ssh_private_key", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cat");
    sensor.no_alert("read_ssh_private_key", NOW, |e| pid_is(e, near) || pid_is(e, keygen));
}

#[test]
fn path_traversal_sensitive_read() {
    let sensor = sensor();
    let scratch = Scratch::new("traversal");
    // enough ../ to climb from the scratch dir to / (more stay at /)
    let up = "../".repeat(scratch.path().components().count() + 1);
    let near = run_ok(cat(&format!("{up}etc/hostname")).current_dir(scratch.path()));
    let raw = format!("{up}etc/shadow");
    let pid = run_ok(cat(&raw).current_dir(scratch.path()));
    let a = sensor.wait_for_alert("path_traversal_sensitive_read", |e| pid_is(e, pid) && path_is(e, "/etc/shadow"));
    check(&a, "path_traversal_sensitive_read", "critical");
    assert_eq!(ev(&a, &["file", "raw_path"]), raw);
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cat");
    sensor.no_alert("path_traversal_sensitive_read", NOW, |e| pid_is(e, near));
}

#[test]
fn credential_search() {
    let sensor = sensor();
    let scratch = Scratch::new("credsearch");
    std::fs::write(scratch.join("notes.txt"), "hello\n").unwrap();
    let dir = scratch.str("");
    let (near, _) = run(Command::new("/usr/bin/grep").args(["-rl", "hello", &dir]));
    let (grep, _) = run(Command::new("/usr/bin/grep").args(["-rl", "BEGIN RSA PRIVATE KEY", &dir]));
    let (find, _) = run(Command::new("/usr/bin/find").args([&dir, "-name", "id_rsa"]));
    let a = sensor.wait_for_alert("credential_search", |e| pid_is(e, grep) && s(e, &["type"]) == "exec");
    check(&a, "credential_search", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/grep");
    let a = sensor.wait_for_alert("credential_search", |e| pid_is(e, find) && s(e, &["type"]) == "exec");
    check(&a, "credential_search", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/find");
    sensor.no_alert("credential_search", NOW, |e| pid_is(e, near));
}

#[test]
fn read_cloud_credentials() {
    let sensor = sensor();
    let scratch = Scratch::new("cloudcreds");
    let aws = scratch.home().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("config"), "[default]\nregion = eu-west-1\n").unwrap();
    std::fs::write(aws.join("credentials"), "[default]\naws_access_key_id = AKIAE2E\n").unwrap();
    let creds = aws.join("credentials");
    let creds = creds.to_str().unwrap();
    let near = run_ok(&mut cat(aws.join("config").to_str().unwrap()));
    let pid = run_ok(&mut cat(creds));
    let a = sensor.wait_for_alert("read_cloud_credentials", |e| pid_is(e, pid) && path_is(e, creds));
    check(&a, "read_cloud_credentials", "medium");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/cat");
    sensor.no_alert("read_cloud_credentials", NOW, |e| pid_is(e, near));
}

#[test]
fn read_process_memory() {
    let sensor = sensor();
    let mut reaper = Reaper::default();
    let victim = reaper.add(Command::new("/usr/bin/sleep").arg("60").spawn().unwrap());
    // its own environ first (the near-miss), then the other process's environ and mem
    let script = format!(
        "import os\nopen('/proc/%d/environ' % os.getpid(), 'rb').read()\nopen('/proc/{victim}/environ', 'rb').read()\nopen('/proc/{victim}/mem', 'rb').close()\n"
    );
    let pid = run_ok(&mut python(&script));
    let environ = format!("/proc/{victim}/environ");
    let a = sensor.wait_for_alert("read_process_memory", |e| pid_is(e, pid) && path_is(e, &environ));
    check(&a, "read_process_memory", "high");
    assert_eq!(ev(&a, &["type"]), "open");
    let mem = format!("/proc/{victim}/mem");
    let a = sensor.wait_for_alert("read_process_memory", |e| pid_is(e, pid) && path_is(e, &mem));
    check(&a, "read_process_memory", "high");
    let own = format!("/proc/{pid}/environ");
    sensor.no_alert("read_process_memory", NOW, |e| pid_is(e, pid) && path_is(e, &own));
}
