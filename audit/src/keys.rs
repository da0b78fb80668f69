//! The HMAC key of a keyed chain: loading it (strictly) and generating one.
//! The key's bytes never reach a log, an error message or Debug output.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::AuditError;
use crate::record::ChainHasher;

/// Bytes written by `sensor audit keygen`.
pub const KEY_LEN: usize = 32;
const MIN_KEY: usize = 16;
const MAX_KEY: usize = 1024;

fn key_err(path: &Path, msg: impl std::fmt::Display) -> AuditError {
    AuditError::Key(format!("{}: {msg}", path.display()))
}

/// Read a key file: raw bytes, 16..=1024 of them, readable by its owner only.
pub fn load_key(path: &Path) -> Result<ChainHasher, AuditError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            key_err(path, format!("key file does not exist (create one with `sensor audit keygen {}`)", path.display()))
        }
        _ => key_err(path, format!("cannot read key file: {e}")),
    })?;
    if !meta.is_file() {
        return Err(key_err(path, "key file is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_err(
            path,
            format!("key file mode is {mode:o}: it must be readable by its owner only (chmod 600)"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| key_err(path, format!("cannot read key file: {e}")))?;
    if bytes.len() < MIN_KEY || bytes.len() > MAX_KEY {
        return Err(key_err(
            path,
            format!("key file holds {} bytes; a key is {MIN_KEY} to {MAX_KEY} raw bytes", bytes.len()),
        ));
    }
    let h = ChainHasher::keyed(&bytes);
    let mut bytes = bytes;
    bytes.fill(0);
    Ok(h)
}

/// Write a new random key (mode 0600). Refuses to overwrite an existing file.
/// Returns the key id (a public fingerprint, safe to print).
pub fn generate_key(path: &Path) -> Result<String, AuditError> {
    let mut key = [0u8; KEY_LEN];
    let mut got = 0;
    while got < KEY_LEN {
        // SAFETY: getrandom writes at most `len` bytes into the buffer we own.
        let n = unsafe { libc::getrandom(key[got..].as_mut_ptr().cast(), KEY_LEN - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(key_err(path, format!("no randomness from the kernel: {e}")));
        }
        got += n as usize;
    }
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        // The umask cannot widen 0600, but an inherited ACL default could: set it explicitly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&key)?;
        f.sync_all()
    })();
    let id = ChainHasher::keyed(&key).key_id().unwrap_or_default().to_string();
    key.fill(0);
    res.map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => key_err(path, "already exists; not overwriting a key"),
        _ => key_err(path, format!("cannot write key file: {e}")),
    })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let id = generate_key(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap().len(), KEY_LEN);
        assert_eq!(load_key(&p).unwrap().key_id(), Some(id.as_str()));
        assert!(generate_key(&p).unwrap_err().to_string().contains("already exists"));

        let e = load_key(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("does not exist") && e.contains("keygen"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_key(&p).unwrap_err().to_string().contains("chmod 600"));
        let short = dir.path().join("short");
        std::fs::write(&short, b"abc").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_key(&short).unwrap_err().to_string();
        assert!(e.contains("3 bytes") && !e.contains("abc"), "{e}");
    }
}
