package sensor.rules.security_tool_tampering

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Attempt to stop or blind a security tool",
	"description": "Killing or stopping the sensor, auditd or another EDR, or flushing audit rules, is what an intruder does first.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1562.001", "T1562.012"],
}

lists := data.sensor.lists

alert contains {"message": msg} if {
	input.type == "exec"
	some pname in process.names # inline named(): a call costs more than the loop
	pname in lists.service_control_tools
	stopping
	some arg in process.argv_tail
	names_security_tool(arg)
	msg := sprintf("security tool stop attempt: %s", [process.cmdline])
}

alert contains {"message": msg} if {
	input.type == "exec"
	count(process.names & {"auditctl"}) > 0 # a set operation: cheaper than a named() call
	disables_audit
	msg := sprintf("audit rules disabled: %s", [process.cmdline])
}

# systemctl/service only when stopping; kill/pkill/killall always.
stopping if count(process.names & {"kill", "pkill", "killall"}) > 0

stopping if {
	not process.named({"kill", "pkill", "killall"})
	some arg in process.argv_tail
	arg in {"stop", "disable", "mask", "kill", "--now", "down", "-d"}
}

names_security_tool(arg) if {
	some tool in lists.security_tools
	may_name(lower(arg), tool)
	regex.match(concat("", [`(^|[^a-z0-9_-])`, tool, `(\.service|\.socket)?([^a-z0-9_-]|$)`]), lower(arg))
}

# A cheap test the pattern implies when the tool name is plain text (every default
# entry is), so a regex is compiled only for arguments that contain the name (a
# `pkill -f x` otherwise compiled one per tool and argument: ms per event).
may_name(s, tool) if contains(s, tool)

may_name(_, tool) if trim(tool, "abcdefghijklmnopqrstuvwxyz0123456789_-") != ""

disables_audit if {
	some i, arg in input.process.args
	arg == "-D"
}

disables_audit if {
	some i, arg in input.process.args
	arg == "-e"
	input.process.args[i + 1] == "0"
}

disables_audit if "-e0" in input.process.args
