package sensor.rules.shell_network_connect_test

import rego.v1

import data.sensor.rules.shell_network_connect
import data.sensor.test.fixtures as f

connect_event(exe, daddr) := f.with_over(f.connect(exe, daddr, 4444), {"process": {"pid": 77}})

test_bash_connecting_out_alerts if {
	alerts := shell_network_connect.alert with input as connect_event("/bin/bash", "203.0.113.9")
	alerts == {{"message": "/bin/bash (pid 77) connected to 203.0.113.9:4444", "daddr": "203.0.113.9", "dport": 4444}}
}

test_loopback_is_quiet if {
	count(shell_network_connect.alert) == 0 with input as connect_event("/bin/bash", "127.0.0.1")
	count(shell_network_connect.alert) == 0 with input as connect_event("/bin/bash", "::1")
	count(shell_network_connect.alert) == 0 with input as connect_event("/bin/bash", "0.0.0.0")
}

test_curl_is_quiet if {
	count(shell_network_connect.alert) == 0 with input as connect_event("/usr/bin/curl", "203.0.113.9")
}

test_busybox_wget_is_quiet_but_busybox_sh_fires if {
	wget := f.with_over(connect_event("/bin/busybox", "203.0.113.9"), {"process": {"comm": "wget"}})
	count(shell_network_connect.alert) == 0 with input as wget
	sh := f.with_over(connect_event("/bin/busybox", "203.0.113.9"), {"process": {"comm": "sh"}})
	count(shell_network_connect.alert) == 1 with input as sh
}

test_unix_socket_is_quiet if {
	count(shell_network_connect.alert) == 0 with input as f.unix_connect("/usr/bin/bash", "/run/nscd/socket")
}
