package sensor.rules.ptrace_traceme_test

import rego.v1

import data.sensor.rules.ptrace_traceme as r
import data.sensor.test.fixtures as f

traceme(exe, parent) := f.with_lineage(f.syscall("ptrace", exe, {"name": "ptrace", "request_name": "PTRACE_TRACEME", "target_pid": 0, "success": true}), [parent])

test_traceme_from_shell_child_fires if {
	count(r.alert) == 1 with input as traceme("/tmp/packed", "/usr/bin/bash")
}

test_debugger_child_is_quiet if {
	count(r.alert) == 0 with input as traceme("/usr/bin/gdb", "/usr/bin/gdb")
	count(r.alert) == 0 with input as traceme("/tmp/prog", "/usr/bin/strace")
}
