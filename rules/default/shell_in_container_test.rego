package sensor.rules.shell_in_container_test

import rego.v1

import data.sensor.rules.shell_in_container
import data.sensor.test.fixtures as f

exec_event(exe, args, container) := f.with_over(f.exec(exe, args), {"process": {"container_id": container}})

test_bash_in_container_alerts if {
	alerts := shell_in_container.alert with input as exec_event("/bin/bash", ["/bin/bash", "-i"], "3f2a9c")
	alerts == {{"message": "shell /bin/bash started in container 3f2a9c (args: /bin/bash -i)", "container_id": "3f2a9c"}}
}

test_bare_sh_in_container_alerts if {
	count(shell_in_container.alert) == 1 with input as exec_event("/bin/sh", ["sh"], "3f2a9c")
}

test_bash_on_host_is_quiet if {
	count(shell_in_container.alert) == 0 with input as exec_event("/bin/bash", ["/bin/bash", "-i"], null)
}

test_sh_c_and_scripts_are_quiet if {
	count(shell_in_container.alert) == 0 with input as exec_event("/bin/sh", ["sh", "-c", "exec nginx"], "3f2a9c")
	count(shell_in_container.alert) == 0 with input as exec_event("/bin/sh", ["sh", "/docker-entrypoint.sh"], "3f2a9c")
}

test_non_shell_in_container_is_quiet if {
	count(shell_in_container.alert) == 0 with input as exec_event("/usr/bin/python3", ["python3"], "3f2a9c")
}
