# Helpers about the acting process. Not a rule: its package is outside sensor.rules.
#
# Allowlists hold program *names*; `trusted(names)` accepts a name only when the
# executable lives in a system binary directory, so copying a tool to /tmp/sshd
# does not inherit sshd's allowance (and writing into /usr/bin is itself alerted).
package sensor.lib.process

import rego.v1

lists := data.sensor.lists

# The last path segment ("" for a path ending in "/").
basename(path) := name if {
	is_string(path)
	parts := split(path, "/")
	name := parts[count(parts) - 1]
}

# The executable's file name.
exe_name := basename(input.process.exe)

# The process runs inside a container.
in_container if {
	is_string(input.process.container_id)
	input.process.container_id != ""
}

# Names the process goes by: executable file name, comm and argv[0]'s base name.
names contains exe_name

names contains comm_name

names contains argv0_name

comm_name := input.process.comm if is_string(input.process.comm)

argv0_name := basename(input.process.args[0])

# The process is known by one of `set` (any of its names). Many rules start with
# this, so it is on the path of every exec: one definition with a loop is cheaper
# on the VM than one definition per name.
named(set) if {
	some n in names
	n in set
}

# `path` is in a system binary directory.
system_path(path) if {
	is_string(path)
	strings.any_prefix_match(path, lists.system_bin_dirs) # one builtin call, not a VM loop
}

# `exe` is one of the programs `set` names, installed in a system directory.
trusted_exe(exe, set) if {
	basename(exe) in set
	system_path(exe)
}

# The acting executable is one of `set` (trusted_exe of input.process.exe, with the
# base name computed once per event: this is on the path of many rules).
trusted(set) if {
	exe_name in set
	system_path(input.process.exe)
}

# Some ancestor (lineage: nearest first) is one of `set`.
ancestor_trusted(set) if {
	some a in input.process.lineage
	trusted_exe(a, set)
}

# The executable or an ancestor is one of `set`.
self_or_ancestor_trusted(set) if trusted(set)

self_or_ancestor_trusted(set) if ancestor_trusted(set)

# The parent's executable.
parent_exe := input.process.lineage[0]

# The executable is a known interactive shell. busybox counts only when it runs
# as a shell applet (it is also wget, nc, ...).
is_shell if {
	input.process.exe in lists.shells
	not input.process.exe in lists.busybox_exes
}

is_shell if {
	input.process.exe in lists.busybox_exes
	input.process.comm in lists.shell_names
}

# An interpreter (python3.11, perl5.36, node, ...): the name without version digits.
# (trim_right drops the same trailing run of digits and dots as regex.replace with
# `[0-9.]+$` would, without compiling a regex on every call.)
is_interpreter_exe(exe) if {
	name := trim_right(basename(exe), "0123456789.")
	name in lists.interpreter_names
}

# A script-based package manager (pip, npm, gem, ...) running in this process:
# the interpreter's arguments name it (`python3 /usr/bin/pip install`, `python3 -m pip`).
script_package_manager if {
	is_interpreter_exe(input.process.exe)
	some i, arg in input.process.args
	i > 0
	basename(arg) in lists.script_package_managers
}

script_package_manager if {
	is_interpreter_exe(input.process.exe)
	some i, arg in input.process.args
	arg == "-m"
	input.process.args[i + 1] in {"pip", "pip3", "pipx", "ensurepip"}
}

# The process is, or descends from, a package manager.
package_manager_lineage if self_or_ancestor_trusted(lists.package_managers)

package_manager_lineage if script_package_manager

# Some ancestor is a shell.
shell_ancestor if {
	some a in input.process.lineage
	a in lists.shells
}

# Some ancestor is a build tool (make, cargo, cmake, ...). Build tools live in
# many places (~/.cargo/bin, toolchains), so this matches names only.
build_tool_ancestor if {
	some a in input.process.lineage
	basename(a) in lists.build_tools
}

# All arguments after argv[0].
argv_tail := array.slice(input.process.args, 1, count(input.process.args))

# The command line as one string.
cmdline := concat(" ", input.process.args)
