package sensor.rules.reverse_shell_dev_tcp

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Shell redirection to /dev/tcp or /dev/udp",
	"description": "bash's /dev/tcp redirection with stdio wired to it is the one-line reverse shell; port probes to localhost are left out.",
	"severity": "critical",
	"events": ["exec"],
	"mitre": ["T1059.004", "T1095"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	some arg in input.process.args
	contains(arg, "/dev/") # one builtin per argument; dev_net_path only on a hit
	dev_net_path(arg)
	not local_probe(arg)
	msg := sprintf("%s (pid %d) redirects to the network: %s", [input.process.exe, input.process.pid, process.cmdline])
}

# A health check such as `</dev/tcp/127.0.0.1/5432` or `echo > /dev/tcp/localhost/80`:
# every /dev/tcp target is local and no stdio is duplicated onto it.
# bash's /dev/tcp/HOST/PORT or /dev/udp/... (plain substring tests: a regex would be
# compiled for every argument of every exec).
dev_net_path(arg) if contains(arg, "/dev/tcp/")

dev_net_path(arg) if contains(arg, "/dev/udp/")

local_probe(arg) if {
	every target in regex.find_n(`/dev/(tcp|udp)/[^/ ]+`, arg, -1) {
		regex.match(`^/dev/(tcp|udp)/(localhost|127\.[0-9.]+|::1)$`, target)
	}
	not regex.match(`>&|<&|<>|&>`, arg)
}
