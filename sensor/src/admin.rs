//! The local admin socket: how `sensor topology` (and later commands) read
//! the running sensor's live state. A Unix socket, mode 0600 in a 0700
//! directory, so only root can ask. One request line, one JSON answer.

use crate::topo::TopologySlot;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const DEFAULT_SOCKET: &str = "/run/sensor/admin.sock";
const MAX_REQUEST: u64 = 256;

/// Binds the socket (replacing a stale one) and serves in the background.
/// Another live sensor on the same path is an error naming it.
pub fn serve(rt: &tokio::runtime::Runtime, path: &Path, topology: TopologySlot) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if dir == Path::new("/run/sensor") {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("another sensor is serving the admin socket {}", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot remove stale {}: {e}", path.display()))?;
    }
    let _guard = rt.enter();
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    rt.spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let topo = topology.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), answer(sock, topo)).await;
            });
        }
    });
    Ok(())
}

async fn answer(sock: tokio::net::UnixStream, topology: TopologySlot) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut line = String::new();
    BufReader::new(tokio::io::AsyncReadExt::take(r, MAX_REQUEST)).read_line(&mut line).await?;
    let reply = match line.trim() {
        "topology" => match topology.get() {
            Some(s) => serde_json::json!({"ok": true, "topology": s}),
            None => serde_json::json!({"ok": false, "error": "the topology is off or not yet published"}),
        },
        other => {
            serde_json::json!({"ok": false, "error": format!("unknown request {:?}", other.chars().take(40).collect::<String>())})
        }
    };
    w.write_all(reply.to_string().as_bytes()).await?;
    w.write_all(b"\n").await?;
    w.shutdown().await
}

/// Client side: one request, the `ok` answer's payload or the error.
pub fn request(path: &Path, what: &str) -> Result<serde_json::Value, String> {
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("cannot reach the sensor at {} ({e}); is `sensor run` running?", path.display()))?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    sock.write_all(format!("{what}\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    sock.take(256 << 20).read_to_string(&mut out).map_err(|e| format!("reading the answer: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).map_err(|e| format!("the sensor sent an invalid answer: {e}"))?;
    if v["ok"] == true { Ok(v) } else { Err(v["error"].as_str().unwrap_or("unknown error").to_string()) }
}

pub fn socket_path(configured: &Option<PathBuf>) -> PathBuf {
    configured.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}
