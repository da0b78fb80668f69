package sensor.rules.container_drift_exec_test

import rego.v1

import data.sensor.rules.container_drift_exec as r
import data.sensor.test.fixtures as f

drift(written) := f.in_container(f.exec_with("/usr/local/bin/xmrig", ["xmrig"], {"exec": {"written_after_parent_start": written}}))

test_drifted_binary_fires if {
	count(r.alert) == 1 with input as drift(true)
}

test_image_binary_is_quiet if {
	count(r.alert) == 0 with input as drift(false)
	count(r.alert) == 0 with input as drift(null)
	count(r.alert) == 0 with input as f.in_container(f.exec("/usr/local/bin/xmrig", ["xmrig"]))
}

test_host_is_quiet if {
	count(r.alert) == 0 with input as f.exec_with("/tmp/a.out", ["a.out"], {"exec": {"written_after_parent_start": true}})
}
