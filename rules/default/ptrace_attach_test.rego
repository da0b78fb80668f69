package sensor.rules.ptrace_attach_test

import rego.v1

import data.sensor.rules.ptrace_attach as r
import data.sensor.test.fixtures as f

trace(exe, req) := f.syscall("ptrace", exe, {"name": "ptrace", "request_name": req, "target_pid": 1234, "success": true})

test_python_attach_fires if {
	alerts := r.alert with input as trace("/usr/bin/python3.11", "PTRACE_ATTACH")
	alerts == {{"message": "/usr/bin/python3.11 (pid 4242) PTRACE_ATTACH pid 1234", "target_pid": 1234}}
}

test_seize_and_poke_fire if {
	count(r.alert) == 1 with input as trace("/tmp/inj", "PTRACE_SEIZE")
	count(r.alert) == 1 with input as trace("/tmp/inj", "PTRACE_POKETEXT")
}

test_debugger_is_quiet if {
	count(r.alert) == 0 with input as trace("/usr/bin/gdb", "PTRACE_ATTACH")
	count(r.alert) == 0 with input as trace("/usr/bin/strace", "PTRACE_SEIZE")
}

test_traceme_is_not_attach if {
	count(r.alert) == 0 with input as trace("/tmp/inj", "PTRACE_TRACEME")
}
