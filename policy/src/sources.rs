//! Collecting rule, test and data files from the embedded set and directories.

use crate::error::{ErrorKind, PolicyError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Rego,
    RegoTest,
    Json,
    Yaml,
}

#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Shown in errors: the path, or `embedded:<relative path>`.
    pub name: String,
    pub kind: FileKind,
    pub content: String,
}

fn kind_of(name: &str) -> Option<FileKind> {
    if name.ends_with("_test.rego") {
        Some(FileKind::RegoTest)
    } else if name.ends_with(".rego") {
        Some(FileKind::Rego)
    } else if name.ends_with(".json") {
        Some(FileKind::Json)
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        Some(FileKind::Yaml)
    } else {
        None
    }
}

/// Sample events live next to rules (for `policy eval`) but are not data documents.
fn skipped(rel: &str) -> bool {
    rel.split('/').any(|seg| seg.starts_with('.') || seg == "samples")
}

pub(crate) fn collect(embedded: &[(&str, &str)], dirs: &[PathBuf], errors: &mut Vec<PolicyError>) -> Vec<SourceFile> {
    let mut out = Vec::new();
    for (rel, content) in embedded {
        if skipped(rel) {
            continue;
        }
        if let Some(kind) = kind_of(rel) {
            out.push(SourceFile { name: format!("embedded:{rel}"), kind, content: content.to_string() });
        }
    }
    for dir in dirs {
        let mut files = Vec::new();
        if let Err(e) = walk(dir, dir, &mut files) {
            errors.push(PolicyError::new(
                dir.display().to_string(),
                (0, 0),
                ErrorKind::Io,
                format!("cannot read rules directory: {e}"),
            ));
            continue;
        }
        files.sort();
        for path in files {
            let name = path.display().to_string();
            let Some(kind) = kind_of(&name) else { continue };
            match std::fs::read_to_string(&path) {
                Ok(content) => out.push(SourceFile { name, kind, content }),
                Err(e) => errors.push(PolicyError::new(name, (0, 0), ErrorKind::Io, e.to_string())),
            }
        }
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if skipped(&rel) {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if kind_of(&rel).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// A cheap fingerprint of everything under `paths` (name, size, mtime) so the
/// watcher notices added, removed and changed files.
pub(crate) type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

pub(crate) fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files = Vec::new();
            // An unreadable directory fingerprints as empty; the reload reports why.
            let _ = walk(p, p, &mut files);
            for f in files {
                push_meta(&f, &mut out);
            }
        } else {
            push_meta(p, &mut out);
        }
    }
    out.sort();
    out
}

fn push_meta(p: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    match std::fs::metadata(p) {
        Ok(m) => out.push((p.to_path_buf(), m.len(), m.modified().ok())),
        Err(_) => out.push((p.to_path_buf(), u64::MAX, None)),
    }
}
