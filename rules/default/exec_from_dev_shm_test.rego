package sensor.rules.exec_from_dev_shm_test

import rego.v1

import data.sensor.rules.exec_from_dev_shm as r
import data.sensor.test.fixtures as f

test_exec_from_dev_shm_fires_even_from_a_shell if {
	count(r.alert) == 1 with input as f.exec("/dev/shm/.x", [".x"])
}

test_exec_from_tmp_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/tmp/build/a.out", ["./a.out"])
}
