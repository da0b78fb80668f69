package sensor.rules.new_listening_port_test

import rego.v1

import data.sensor.rules.new_listening_port as r
import data.sensor.test.fixtures as f

listen(port) := {"type": "listen", "process": f.proc("/usr/bin/python3.11", ["python3", "-m", "http.server"]), "net": {"proto": "tcp", "family": "ipv4", "saddr": "0.0.0.0", "sport": port, "daddr": "0.0.0.0", "dport": 0}}

test_listen_fires if {
	alerts := r.alert with input as listen(8000)
	alerts == {{"message": "/usr/bin/python3.11 (pid 4242) listens on 0.0.0.0:8000", "port": 8000}}
}

test_expected_port_is_quiet if {
	count(r.alert) == 0 with input as listen(8000) with data.sensor.lists.expected_listen_ports as [22, 8000]
}
