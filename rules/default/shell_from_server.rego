package sensor.rules.shell_from_server

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Shell spawned by a server or database process",
	"description": "A web server, database or app runtime starting a shell (directly or via a child) is the classic sign of RCE or a web shell.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1190", "T1505.003", "T1059.004"],
}

alert contains {"message": msg, "server": server} if {
	input.type == "exec"
	process.is_shell
	some i, a in input.process.lineage
	server_exe(a)
	not started_from_shell(i, a)
	server := a
	msg := sprintf("%s (pid %d) started under server %s: %s", [input.process.exe, input.process.pid, server, process.cmdline])
}

server_exe(a) if process.basename(a) in data.sensor.lists.server_names

server_exe(a) if strings.any_prefix_match(process.basename(a), data.sensor.lists.server_name_prefixes)

# Dev runtimes (java, node, dotnet) also host IDE servers, build tools and npm
# scripts, which run shells all the time. They count as servers only when nothing
# above them is a shell, i.e. when a service manager or container runtime started
# them rather than a person or a build.
started_from_shell(i, a) if {
	process.basename(a) in data.sensor.lists.dev_runtime_servers
	some j, above in input.process.lineage
	j > i
	above in data.sensor.lists.shells
}
