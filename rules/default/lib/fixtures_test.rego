# Event builders shared by the rule tests (loaded by `policy test` only).
package sensor.test.fixtures

import rego.v1

import data.sensor.lib.process

lineage := ["/usr/bin/bash", "/usr/sbin/sshd", "/usr/lib/systemd/systemd"]

proc(exe, args) := {
	"pid": 4242, "tid": 4242, "ppid": 4000, "uid": 0, "euid": 0, "gid": 0, "egid": 0,
	"comm": substring(process.basename(exe), 0, 15), "exe": exe, "args": args, "cwd": "/root",
	"container_id": null, "lineage": lineage,
}

exec(exe, args) := {"type": "exec", "process": proc(exe, args), "exec": {"filename": exe, "argc": count(args), "args_truncated": false}}

# over is merged into the event (nested objects are merged, lists replaced).
exec_with(exe, args, over) := object.union(exec(exe, args), over)

open(exe, path, flags) := {
	"type": "open", "process": proc(exe, [exe]),
	"file": {"path": path, "flags": flags, "mode": 0, "result": 3, "success": true},
}

read(exe, path) := open(exe, path, ["O_RDONLY", "O_CLOEXEC"])

write(exe, path) := open(exe, path, ["O_WRONLY", "O_CREAT", "O_TRUNC"])

with_over(event, over) := object.union(event, over)

# rename/unlink/chmod/link/symlink
fileop(type, exe, path, new_path) := {
	"type": type, "process": proc(exe, [exe]),
	"file": {"path": path, "new_path": new_path, "result": 0, "success": true},
}

chmod(exe, path, mode) := {
	"type": "chmod", "process": proc(exe, [exe, path]),
	"file": {"path": path, "mode": mode, "result": 0, "success": true},
}

connect(exe, daddr, dport) := {
	"type": "connect", "process": proc(exe, [exe]),
	"net": {"proto": "tcp", "family": "ipv4", "saddr": "10.0.0.5", "sport": 40000, "daddr": daddr, "dport": dport, "direction": "outbound", "success": true},
}

unix_connect(exe, path) := {
	"type": "connect", "process": proc(exe, [exe]),
	"net": {"proto": "unix", "family": "unix", "path": path, "direction": "outbound", "success": true},
}

syscall(type, exe, sc) := {"type": type, "process": proc(exe, [exe]), "syscall": sc}

in_container(event) := object.union(event, {"process": {"container_id": "3f2a9c0d1e2f"}})

with_lineage(event, l) := object.union(event, {"process": {"lineage": l}})
