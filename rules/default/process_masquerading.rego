package sensor.rules.process_masquerading

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Process masquerading as a kernel thread or system daemon",
	"description": "A program whose comm or argv[0] claims to be kworker, sshd, cron... but whose executable is something else is hiding in ps.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1036.004", "T1036.005"],
}

lists := data.sensor.lists

# Kernel threads never call execve: any exec wearing such a name is fake.
alert contains {"message": msg, "claimed": name} if {
	input.type == "exec"
	strings.any_prefix_match(claimed_names, lists.masquerade_kernel_prefixes) # one call for all names
	some name in claimed_names
	strings.any_prefix_match(name, lists.masquerade_kernel_prefixes)
	msg := sprintf("%s runs as %q, a kernel thread name", [input.process.exe, name])
}

alert contains {"message": msg, "claimed": name} if {
	input.type == "exec"
	some name in claimed_names
	name in lists.masquerade_daemon_names
	not genuine(name)
	not script_named(name)
	msg := sprintf("%s runs as %q but is not that program", [input.process.exe, name])
}

claimed_names contains input.process.comm if is_string(input.process.comm)

claimed_names contains process.basename(input.process.args[0])

# ps shows kernel threads in brackets; fakes copy that: "[kworker/0:2]".
claimed_names contains trim(input.process.args[0], "[]") if startswith(input.process.args[0], "[")

# comm holds at most 15 characters.
short(s) := substring(s, 0, 15)

real_names(name) := object.get(lists.masquerade_allowed_exes, name, [name])

genuine(name) if {
	process.system_path(input.process.exe)
	some real in real_names(name)
	short(process.exe_name) == short(real)
}

# systemd* helpers: systemd-journald, systemd-udevd... under /lib/systemd.
genuine(name) if {
	startswith(name, "systemd")
	process.system_path(input.process.exe)
	startswith(process.exe_name, "systemd")
}

# An init script (/etc/init.d/cron) runs under its interpreter with the script's name.
script_named(name) if {
	process.is_interpreter_exe(input.process.exe)
	file := input.exec.filename
	short(process.basename(file)) == short(name)
	regex.match(`^/(etc|usr|lib|bin|sbin)/`, file)
}

script_named(name) if {
	process.is_shell
	file := input.exec.filename
	short(process.basename(file)) == short(name)
	regex.match(`^/(etc|usr|lib|bin|sbin)/`, file)
}
