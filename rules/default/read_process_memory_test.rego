package sensor.rules.read_process_memory_test

import rego.v1

import data.sensor.rules.read_process_memory as r
import data.sensor.test.fixtures as f

test_other_process_environ_fires if {
	alerts := r.alert with input as f.read("/usr/bin/cat", "/proc/1234/environ")
	alerts == {{"message": "/usr/bin/cat (pid 4242) read environ of pid 1234", "target_pid": 1234}}
}

test_other_process_mem_fires if {
	count(r.alert) == 1 with input as f.open("/usr/bin/python3.11", "/proc/77/mem", ["O_RDWR"])
}

test_own_environ_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/proc/4242/environ")
}

test_debugger_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/gdb", "/proc/1234/mem")
}

test_other_proc_files_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/proc/1234/status")
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/proc/1234/environment")
}
