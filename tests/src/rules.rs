//! Fixtures for the default-rule tests: performing real attack behaviour
//! safely. Every fixture undoes itself on drop, also when the test fails.
//!
//! * `Scratch`: a temp dir (with a fake home) for files the test creates.
//! * `in_private_overlay`: run a command in a private mount namespace where
//!   system directories (/etc, /usr/sbin, /var/log...) are overlaid by a
//!   throwaway tmpfs layer: the command really writes `/etc/cron.d/x` (the
//!   sensor reports that path) but the real directory is never touched.
//! * `NetNs`: a throwaway network namespace joined by a veth pair with
//!   the namespace at 198.51.100.0/24 (TEST-NET-2), with listeners inside it.
//! * `FakeContainer`: a real cgroup v2 directory named like a docker scope;
//!   processes started in it are what the sensor calls "in a container".
//! * `Reaper`: children killed and reaped on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A test-owned directory under /tmp, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new().prefix(&format!("sensor-rules-{name}-")).tempdir().expect("scratch dir");
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A fake home directory `<scratch>/home/alice`, created.
    pub fn home(&self) -> PathBuf {
        let h = self.join("home/alice");
        std::fs::create_dir_all(&h).unwrap();
        h
    }

    pub fn str(&self, p: &str) -> String {
        self.join(p).to_str().unwrap().to_string()
    }
}

/// Children that are killed and reaped when the test ends.
#[derive(Default)]
pub struct Reaper(Vec<Child>);

impl Reaper {
    pub fn add(&mut self, c: Child) -> u32 {
        let pid = c.id();
        self.0.push(c);
        pid
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` and returns (pid, output); the process's stdin is /dev/null.
pub fn run(cmd: &mut Command) -> (u32, Output) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

/// Runs `cmd`, which must succeed; returns its pid.
pub fn run_ok(cmd: &mut Command) -> u32 {
    let what = format!("{cmd:?}");
    let (pid, out) = run(cmd);
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pid
}

/// `/usr/bin/python3 -c script` (the system interpreter: a predictable exe).
pub fn python(script: &str) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.arg("-c").arg(script);
    c
}

/// Runs `cmd` in a private mount namespace in which each directory of
/// `overlays` has a throwaway writable layer (overlayfs, upper on a tmpfs that
/// dies with the namespace). The command keeps the pid of the returned child
/// (`unshare` and `sh` exec into it), so events can be keyed by it.
pub fn in_private_overlay(overlays: &[&str], cmd: &[&str]) -> (u32, Output) {
    let scratch = Scratch::new("overlay");
    let script = r#"set -e
mount -t tmpfs sensor-e2e "$SENSOR_E2E_SCRATCH"
i=0
for d in $SENSOR_E2E_OVERLAYS; do
  mkdir "$SENSOR_E2E_SCRATCH/u$i" "$SENSOR_E2E_SCRATCH/w$i"
  mount -t overlay sensor-e2e -o "lowerdir=$d,upperdir=$SENSOR_E2E_SCRATCH/u$i,workdir=$SENSOR_E2E_SCRATCH/w$i" "$d"
  i=$((i+1))
done
exec "$@""#;
    for d in overlays {
        assert!(!d.contains(' ') && Path::new(d).is_dir(), "overlay target {d} must be an existing directory");
    }
    run(Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"])
        .args(cmd)
        .env("SENSOR_E2E_SCRATCH", scratch.path())
        .env("SENSOR_E2E_OVERLAYS", overlays.join(" ")))
}

/// Like `in_private_overlay`, and the command must succeed.
pub fn in_private_overlay_ok(overlays: &[&str], cmd: &[&str]) -> u32 {
    let (pid, out) = in_private_overlay(overlays, cmd);
    assert!(
        out.status.success(),
        "{cmd:?} in a private overlay of {overlays:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pid
}

fn sh(cmd: &str) {
    let out = Command::new("/bin/sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A throwaway network namespace `sre-<pid>-<n>` with a veth pair: the host
/// side has `host_addr()` (198.18.251.x), the namespace side `peer()`
/// (198.51.100.x, a documentation range nothing real routes).
pub struct NetNs {
    pub name: String,
    host_if: String,
    idx: u8,
}

impl NetNs {
    pub fn new() -> NetNs {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // one address pair per namespace; spread by pid so two test processes rarely collide
        let idx = ((std::process::id() * 7 + n) % 250) as u8 + 2;
        let name = format!("sre-{}-{n}", std::process::id());
        let host_if = format!("srh{}x{n}", std::process::id() % 100000);
        let peer_if = format!("srp{}x{n}", std::process::id() % 100000);
        let ns = NetNs { name: name.clone(), host_if: host_if.clone(), idx };
        let (h, p) = (ns.host_addr(), ns.peer());
        // point-to-point /32 routes: the host's own address is not in the
        // documentation range (rules rightly treat the host's own network as local)
        sh(&format!(
            "ip netns add {name} && ip link add {host_if} type veth peer name {peer_if} && \
             ip link set {peer_if} netns {name} && ip addr add {h}/32 dev {host_if} && ip link set {host_if} up && \
             ip -n {name} addr add {p}/32 dev {peer_if} && ip -n {name} link set {peer_if} up && \
             ip -n {name} link set lo up && ip route add {p}/32 dev {host_if} src {h} && \
             ip -n {name} route add {h}/32 dev {peer_if}"
        ));
        ns
    }

    /// The host's end, in 198.18.0.0/15 (RFC 2544 benchmarking, not routed).
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 251, self.idx)
    }

    /// The address inside the namespace (where listeners are), in 198.51.100.0/24.
    pub fn peer(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.idx)
    }

    pub fn peer_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.peer(), port))
    }

    /// A TCP listener inside the namespace on `peer():port` (created by a
    /// thread that joined the namespace; the socket stays in it).
    pub fn listen(&self, port: u16) -> TcpListener {
        let path = format!("/run/netns/{}", self.name);
        let addr = self.peer_addr(port);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(&path).unwrap();
            // SAFETY: moves only this short-lived thread into the namespace.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in the namespace: {e}"))
        })
        .join()
        .unwrap()
    }

    /// Serves `response` to up to `n` connections (reading the request first),
    /// in the background; gives up after 30 s.
    pub fn serve(&self, port: u16, n: usize, response: &'static [u8]) {
        let l = self.listen(port);
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut served = 0;
            while served < n && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = c.read(&mut buf);
                        let _ = c.write_all(response);
                        served += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // deleting the namespace destroys the veth pair
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).stderr(Stdio::null()).status();
    }
}

/// Accepts one connection on `l` (within 20 s), sends `input`, and returns
/// what the peer wrote until it closed (or 10 s passed).
pub fn converse(l: &TcpListener, input: &[u8]) -> String {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no connection to {:?}: {e}", l.local_addr()),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(input).unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 mount point (`/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one).
pub fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .expect("no cgroup2 mount in /proc/mounts")
}

/// A process group the sensor attributes to a docker container: a real
/// cgroup `<cgroup2>/sensor-e2e-<pid>-<n>/docker-<64 hex>.scope`. Processes
/// join it before they exec. Drop kills what is inside and removes it.
pub struct FakeContainer {
    pub id: String,
    parent: PathBuf,
    dir: PathBuf,
}

impl FakeContainer {
    pub fn new() -> FakeContainer {
        let u = crate::unique();
        let pid = std::process::id() as u64;
        let id = format!(
            "{:016x}{:016x}{:016x}{:016x}",
            u,
            u.rotate_left(17) ^ pid,
            u.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            pid.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ u
        );
        let parent = cgroup2_root().join(format!("sensor-e2e-{pid}-{}", u % 1_000_000));
        let dir = parent.join(format!("docker-{id}.scope"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create cgroup {}: {e}", dir.display()));
        FakeContainer { id, parent, dir }
    }

    /// A command whose process joins the container's cgroup before it execs.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let procs = std::ffi::CString::new(self.dir.join("cgroup.procs").to_str().unwrap()).unwrap();
        let mut c = Command::new(program);
        // SAFETY: open/write/close only, between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rc = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if rc != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// A shell (`bash -s`) in the container reading commands from the test.
    pub fn shell(&self) -> ContainerShell {
        let child = self
            .command("/usr/bin/bash")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ContainerShell { child }
    }

    pub fn procs(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Default for FakeContainer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::fs::write(self.dir.join("cgroup.kill"), "1").is_err() {
                for p in self.procs() {
                    // SAFETY: only processes the test put into its own cgroup.
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.parent);
    }
}

/// A `bash -s` inside a `FakeContainer`; each `run` line is one command.
pub struct ContainerShell {
    child: Child,
}

impl ContainerShell {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line (its stdin is /dev/null).
    pub fn run(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line} </dev/null").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for ContainerShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
