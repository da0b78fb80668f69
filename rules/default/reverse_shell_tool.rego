package sensor.rules.reverse_shell_tool

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Netcat or socat wiring a program to the network",
	"description": "nc -e / ncat --sh-exec / socat exec: hand a socket to a shell: a bind or reverse shell.",
	"severity": "critical",
	"events": ["exec"],
	"mitre": ["T1059.004", "T1095"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	some pname in process.names # inline named(): a call costs more than the loop
	pname in data.sensor.lists.netcat_names
	some arg in process.argv_tail
	startswith(arg, "-") # every pattern below needs it: skips the regexes for other arguments
	netcat_exec_option(arg)
	msg := sprintf("reverse/bind shell: %s", [process.cmdline])
}

alert contains {"message": msg} if {
	input.type == "exec"
	count(process.names & {"socat"}) > 0 # a set operation: cheaper than a named() call
	some arg in process.argv_tail
	contains(arg, ":") # implied by the pattern: skips the regex for other arguments
	regex.match(`(^|[,!])(exec|system):`, lower(arg))
	msg := sprintf("reverse/bind shell: %s", [process.cmdline])
}

netcat_exec_option(arg) if regex.match(`^--(exec|sh-exec|lua-exec)(=|$)`, arg)

# -e / -c, alone or ending a cluster of short options (-nve, -lvpc).
netcat_exec_option(arg) if regex.match(`^-[a-zA-Z0-9]*[ec]$`, arg)

# -e/bin/sh
netcat_exec_option(arg) if regex.match(`^-[a-zA-Z0-9]*e/`, arg)
