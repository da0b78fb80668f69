package sensor.rules.shell_in_container_test

import rego.v1

import data.sensor.rules.shell_in_container

exec_event(exe, container) := {
	"type": "exec",
	"process": {"exe": exe, "args": [exe, "-i"], "container_id": container, "uid": 0},
}

test_bash_in_container_alerts if {
	alerts := shell_in_container.alert with input as exec_event("/bin/bash", "3f2a9c")
	alerts == {{"message": "shell /bin/bash started in container 3f2a9c (args: /bin/bash -i)", "container_id": "3f2a9c"}}
}

test_bash_on_host_is_quiet if {
	count(shell_in_container.alert) == 0 with input as exec_event("/bin/bash", null)
}

test_non_shell_in_container_is_quiet if {
	count(shell_in_container.alert) == 0 with input as exec_event("/usr/bin/python3", "3f2a9c")
}
