//! The default detection rule set, embedded at build time.
//!
//! `FILES` holds `(relative path, contents)` for every `.rego` (rules and their
//! `*_test.rego` tests) and data document (`.json`, `.yaml`) under `rules/default/`.

include!(concat!(env!("OUT_DIR"), "/rules.rs"));

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_files_have_relative_paths() {
        for (path, _) in super::FILES {
            assert!(!path.starts_with('/'), "{path} should be relative");
        }
    }
}
