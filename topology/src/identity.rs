//! Service identity, most specific first: a configured name, then the
//! container, then the systemd service, then the executable plus the port it
//! serves (so two servers built from one binary are two nodes, and a proxy is
//! one node whether it accepts or connects).

use crate::Proc;
use serde::Deserialize;
use std::sync::Arc;

/// `[[topology.names]]`: processes matching every given field get `name`.
/// `exe` is a glob (`*` within a path segment, `**` across).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRule {
    pub name: String,
    pub exe: Option<String>,
    pub container: Option<String>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    pub enabled: bool,
    /// Edges kept (least recently active evicted first).
    pub max_edges: usize,
    /// A connect waits this long for its server's accept before the server
    /// is named from listeners or as a remote address.
    pub join_window_ms: u64,
    pub names: Vec<NameRule>,
    /// How often the graph is written to the audit trail as a
    /// `topology_snapshot` record (`sensor topology --db`); 0 = never.
    pub snapshot_interval_secs: u64,
    /// DNS response codes that count as failed requests on an edge.
    pub dns_error_rcodes: Vec<String>,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            enabled: true,
            max_edges: 2_000,
            join_window_ms: 2_000,
            names: Vec::new(),
            snapshot_interval_secs: 60,
            dns_error_rcodes: vec!["SERVFAIL".into(), "REFUSED".into()],
        }
    }
}

impl TopologyConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.max_edges < 16 {
            errs.push("max_edges must be at least 16".to_string());
        }
        for (i, r) in self.names.iter().enumerate() {
            if r.name.trim().is_empty() {
                errs.push(format!("names[{i}]: name is empty"));
            }
            if r.exe.is_none() && r.container.is_none() && r.unit.is_none() {
                errs.push(format!("names[{i}] ({}): give at least one of exe, container, unit", r.name));
            }
            if let Some(g) = &r.exe
                && let Err(e) = globset::GlobBuilder::new(g).literal_separator(true).build()
            {
                errs.push(format!("names[{i}] ({}): bad exe glob {g:?}: {e}", r.name));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
    }
}

pub(crate) struct Namer {
    rules: Vec<(NameRule, Option<globset::GlobMatcher>, Arc<str>)>,
}

fn basename(exe: &str) -> &str {
    exe.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("unknown")
}

/// Units that name a login session or a user manager, not a service.
fn is_service_unit(unit: &str) -> bool {
    unit.ends_with(".service") && !unit.starts_with("user@") && !unit.starts_with("session-")
}

impl Namer {
    pub(crate) fn new(cfg: &TopologyConfig) -> Namer {
        let rules = cfg
            .names
            .iter()
            .map(|r| {
                let glob = r.exe.as_ref().and_then(|g| {
                    globset::GlobBuilder::new(g).literal_separator(true).build().ok().map(|g| g.compile_matcher())
                });
                (r.clone(), glob, Arc::from(r.name.as_str()))
            })
            .collect();
        Namer { rules }
    }

    /// The service a process belongs to; `port` is the port it serves, if
    /// any. Outside the host's network namespace the namespace is part of
    /// the name (`nginx:80@web-ns`), unless a container or a configured name
    /// already tells the copies apart.
    pub(crate) fn service(&self, p: &Proc, port: Option<u16>) -> Arc<str> {
        let base = self.base_service(p, port);
        match p.netns {
            Some(ns) if !base.starts_with("container:") && !self.rules.iter().any(|(_, _, n)| *n == base) => {
                Arc::from(format!("{base}@{ns}"))
            }
            _ => base,
        }
    }

    fn base_service(&self, p: &Proc, port: Option<u16>) -> Arc<str> {
        for (r, glob, name) in &self.rules {
            let exe_ok = glob.as_ref().is_none_or(|g| g.is_match(p.exe)) && (r.exe.is_none() || glob.is_some());
            let container_ok =
                r.container.as_deref().is_none_or(|c| p.container_id.is_some_and(|id| id.starts_with(c)));
            let unit_ok = r.unit.as_deref().is_none_or(|u| p.systemd_unit == Some(u));
            if exe_ok && container_ok && unit_ok {
                return name.clone();
            }
        }
        if let Some(id) = p.container_id.filter(|id| !id.is_empty()) {
            return Arc::from(format!("container:{}", &id[..id.len().min(12)]));
        }
        if let Some(unit) = p.systemd_unit.filter(|u| is_service_unit(u)) {
            return Arc::from(unit.trim_end_matches(".service"));
        }
        match port {
            Some(port) => Arc::from(format!("{}:{port}", basename(p.exe))),
            None => Arc::from(basename(p.exe)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc<'a>(exe: &'a str, container: Option<&'a str>, unit: Option<&'a str>) -> Proc<'a> {
        Proc { pid: 1, exe, container_id: container, systemd_unit: unit, netns: None }
    }

    #[test]
    fn most_specific_identity_wins() {
        let cfg = TopologyConfig {
            names: vec![NameRule {
                name: "checkout".into(),
                exe: Some("/srv/**/checkout-*".into()),
                container: None,
                unit: None,
            }],
            ..TopologyConfig::default()
        };
        let n = Namer::new(&cfg);
        assert_eq!(&*n.service(&proc("/srv/app/bin/checkout-v2", Some("abc"), None), Some(80)), "checkout");
        let cid = "0123456789abcdef0123";
        assert_eq!(
            &*n.service(&proc("/usr/bin/python3", Some(cid), Some("x.service")), None),
            "container:0123456789ab"
        );
        assert_eq!(&*n.service(&proc("/usr/sbin/nginx", None, Some("nginx.service")), Some(80)), "nginx");
        assert_eq!(&*n.service(&proc("/usr/bin/python3", None, Some("session-3.scope")), Some(8080)), "python3:8080");
        assert_eq!(&*n.service(&proc("/usr/bin/curl", None, Some("user@0.service")), None), "curl");
        assert_eq!(&*n.service(&proc("", None, None), None), "unknown");
        let in_ns = Proc { netns: Some("blue"), ..proc("/usr/bin/python3", None, None) };
        assert_eq!(&*n.service(&in_ns, Some(8080)), "python3:8080@blue");
        let named = Proc { netns: Some("blue"), ..proc("/srv/x/checkout-1", None, None) };
        assert_eq!(&*n.service(&named, Some(80)), "checkout");
    }

    #[test]
    fn bad_config_is_reported() {
        let cfg = TopologyConfig {
            max_edges: 1,
            names: vec![
                NameRule { name: "".into(), exe: Some("[".into()), container: None, unit: None },
                NameRule { name: "x".into(), exe: None, container: None, unit: None },
            ],
            ..TopologyConfig::default()
        };
        let e = cfg.validate().unwrap_err();
        assert!(
            e.contains("max_edges")
                && e.contains("name is empty")
                && e.contains("bad exe glob")
                && e.contains("names[1] (x)"),
            "{e}"
        );
    }
}
