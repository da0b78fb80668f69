//! Container and systemd-unit identity from a process's cgroup paths
//! (`/proc/PID/cgroup`), for docker, containerd (incl. Kubernetes via CRI),
//! CRI-O, podman and systemd scopes, on cgroup v1, v2 and hybrid hosts.

/// What a cgroup path says about where a process runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupIdentity {
    /// Full 64-hex container id.
    pub container_id: Option<String>,
    /// `docker`, `containerd`, `crio`, `podman` or `kubernetes` (pod cgroup
    /// without a recognisable runtime prefix).
    pub runtime: Option<&'static str>,
    /// The systemd unit (service or scope) the process belongs to, if any.
    pub systemd_unit: Option<String>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Parses one cgroup path component (or a whole path) for a container id.
fn container_in_path(path: &str) -> Option<(String, &'static str)> {
    // Walk from the leaf: the innermost container wins (nested runtimes).
    for comp in path.rsplit('/') {
        let comp = comp.strip_suffix(".scope").unwrap_or(comp);
        let prefixed: &[(&str, &'static str)] = &[
            ("docker-", "docker"),
            ("cri-containerd-", "containerd"),
            ("crio-conmon-", "crio"),
            ("crio-", "crio"),
            ("libpod-conmon-", "podman"),
            ("libpod-", "podman"),
        ];
        for (prefix, runtime) in prefixed {
            if let Some(id) = comp.strip_prefix(prefix)
                && is_hex64(id)
            {
                return Some((id.to_string(), runtime));
            }
        }
        if is_hex64(comp) {
            // cgroupfs driver: /docker/<id>, /kubepods/.../<id>, /system.slice/containerd/<id>
            let runtime = if path.contains("/docker/") {
                "docker"
            } else if path.contains("kubepods") {
                "kubernetes"
            } else if path.contains("libpod") {
                "podman"
            } else {
                "containerd"
            };
            return Some((comp.to_string(), runtime));
        }
    }
    None
}

/// The systemd unit named by a cgroup path: the last `*.service` or `*.scope`
/// component that is not a container scope.
fn unit_in_path(path: &str) -> Option<String> {
    path.rsplit('/')
        .find(|c| (c.ends_with(".service") || c.ends_with(".scope")) && container_in_path(c).is_none())
        .map(str::to_string)
}

/// Parses the text of `/proc/PID/cgroup` (`hierarchy-id:controllers:path` per line).
pub fn parse_proc_cgroup(text: &str) -> CgroupIdentity {
    let mut id = CgroupIdentity::default();
    // Prefer the v2 line (0::) and the systemd v1 line for the unit; any line
    // for the container id (on hybrid hosts docker may only appear in v1).
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_hier), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id.container_id.is_none()
            && let Some((cid, runtime)) = container_in_path(path)
        {
            id.container_id = Some(cid);
            id.runtime = Some(runtime);
        }
        if id.systemd_unit.is_none() && (controllers.is_empty() || controllers == "name=systemd") {
            id.systemd_unit = unit_in_path(path);
        }
    }
    id
}

/// Reads and parses `/proc/PID/cgroup`; None when the process is gone.
pub fn read_for_pid(pid: u32) -> Option<CgroupIdentity> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    Some(parse_proc_cgroup(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f0d6a2b9c1e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";

    #[test]
    fn docker_cgroupfs_v1() {
        let t = format!("12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        let id = parse_proc_cgroup(&t);
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, Some("docker"));
        assert_eq!(id.systemd_unit, None);
    }

    #[test]
    fn docker_systemd_driver_v2() {
        let t = format!("0::/system.slice/docker-{ID}.scope\n");
        let id = parse_proc_cgroup(&t);
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, Some("docker"));
        assert_eq!(id.systemd_unit, None, "a container scope is not a unit of its own");
    }

    #[test]
    fn containerd_under_kubernetes() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-{ID}.scope\n"
        );
        let id = parse_proc_cgroup(&t);
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, Some("containerd"));
    }

    #[test]
    fn kubepods_cgroupfs() {
        let t = format!("4:cpu,cpuacct:/kubepods/besteffort/pod0a1b/{ID}\n");
        let id = parse_proc_cgroup(&t);
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, Some("kubernetes"));
    }

    #[test]
    fn crio_and_podman() {
        let id = parse_proc_cgroup(&format!("0::/kubepods.slice/crio-{ID}.scope\n"));
        assert_eq!((id.container_id.as_deref(), id.runtime), (Some(ID), Some("crio")));
        let id = parse_proc_cgroup(&format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n"
        ));
        assert_eq!((id.container_id.as_deref(), id.runtime), (Some(ID), Some("podman")));
    }

    #[test]
    fn systemd_service_on_hybrid_host() {
        let t = "12:pids:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n0::/system.slice/nginx.service\n";
        let id = parse_proc_cgroup(t);
        assert_eq!(id.container_id, None);
        assert_eq!(id.systemd_unit.as_deref(), Some("nginx.service"));
    }

    #[test]
    fn user_session_scope() {
        let id = parse_proc_cgroup("0::/user.slice/user-0.slice/session-3.scope\n");
        assert_eq!(id.systemd_unit.as_deref(), Some("session-3.scope"));
        assert_eq!(id.container_id, None);
    }

    #[test]
    fn malformed_and_lookalikes_are_ignored() {
        let id = parse_proc_cgroup("garbage\n::\n0::/docker/notanid\n0::/docker-ABCDEF.scope\n");
        assert_eq!(id.container_id, None);
        assert_eq!(id.runtime, None);
        // uppercase hex is not how runtimes name containers
        let upper = ID.to_uppercase();
        assert_eq!(parse_proc_cgroup(&format!("0::/docker/{upper}\n")).container_id, None);
    }

    #[test]
    fn own_process_parses_without_error() {
        let id = read_for_pid(std::process::id()).expect("own /proc/self/cgroup");
        // this test machine runs no container: nothing may be invented
        assert!(id.container_id.is_none() || id.container_id.as_ref().unwrap().len() == 64);
    }
}
