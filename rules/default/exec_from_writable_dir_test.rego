package sensor.rules.exec_from_writable_dir_test

import rego.v1

import data.sensor.rules.exec_from_writable_dir

test_exec_from_tmp_alerts if {
	alerts := exec_from_writable_dir.alert with input as {"type": "exec", "process": {"exe": "/tmp/x", "uid": 1000}}
	alerts == {{"message": "/tmp/x executed from /tmp/ by uid 1000"}}
}

test_exec_from_dev_shm_alerts if {
	count(exec_from_writable_dir.alert) == 1 with input as {"type": "exec", "process": {"exe": "/dev/shm/.k", "uid": 0}}
}

test_exec_from_usr_bin_is_quiet if {
	count(exec_from_writable_dir.alert) == 0 with input as {"type": "exec", "process": {"exe": "/usr/bin/ls", "uid": 0}}
}
