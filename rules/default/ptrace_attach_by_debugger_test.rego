package sensor.rules.ptrace_attach_by_debugger_test

import rego.v1

import data.sensor.rules.ptrace_attach_by_debugger as r
import data.sensor.test.fixtures as f

trace(exe, req) := f.syscall("ptrace", exe, {"name": "ptrace", "request_name": req, "target_pid": 1234, "success": true})

test_gdb_attach_fires if {
	count(r.alert) == 1 with input as trace("/usr/bin/gdb", "PTRACE_ATTACH")
}

test_non_debugger_is_left_to_ptrace_attach if {
	count(r.alert) == 0 with input as trace("/tmp/inj", "PTRACE_ATTACH")
	count(r.alert) == 0 with input as trace("/tmp/gdb", "PTRACE_ATTACH")
}
