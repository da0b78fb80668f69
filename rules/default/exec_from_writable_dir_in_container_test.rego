package sensor.rules.exec_from_writable_dir_in_container_test

import rego.v1

import data.sensor.rules.exec_from_writable_dir_in_container as r
import data.sensor.test.fixtures as f

test_tmp_exec_in_container_fires if {
	count(r.alert) == 1 with input as f.in_container(f.exec("/tmp/kinsing", ["/tmp/kinsing"]))
}

test_tmp_exec_on_host_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/tmp/kinsing", ["/tmp/kinsing"])
}

test_dev_shm_is_left_to_its_rule if {
	count(r.alert) == 0 with input as f.in_container(f.exec("/dev/shm/x", ["x"]))
}

test_image_binary_in_container_is_quiet if {
	count(r.alert) == 0 with input as f.in_container(f.exec("/usr/local/bin/app", ["app"]))
}
