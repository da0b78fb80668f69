package sensor.rules.shell_stdio_to_socket_test

import rego.v1

import data.sensor.rules.shell_stdio_to_socket as r
import data.sensor.test.fixtures as f

dup(exe) := f.syscall("dup", exe, {"name": "dup2", "oldfd": 3, "newfd": 1, "oldfd_is_socket": true, "result": 1, "success": true})

test_bash_dup_socket_fires if {
	alerts := r.alert with input as dup("/usr/bin/bash")
	alerts == {{"message": "/usr/bin/bash (pid 4242) dup'ed socket fd 3 onto fd 1"}}
}

test_python_dup_socket_fires if {
	count(r.alert) == 1 with input as dup("/usr/bin/python3.11")
}

test_systemd_socket_activation_is_quiet if {
	count(r.alert) == 0 with input as dup("/usr/lib/systemd/systemd")
	count(r.alert) == 0 with input as dup("/usr/sbin/xinetd")
}

test_non_socket_is_quiet if {
	count(r.alert) == 0 with input as f.with_over(dup("/usr/bin/bash"), {"syscall": {"oldfd_is_socket": false}})
}
