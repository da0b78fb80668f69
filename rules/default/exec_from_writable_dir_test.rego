package sensor.rules.exec_from_writable_dir_test

import rego.v1

import data.sensor.rules.exec_from_writable_dir
import data.sensor.test.fixtures as f

exec_event(exe, uid) := f.with_over(f.exec(exe, [exe]), {"process": {"uid": uid}})

test_exec_from_tmp_alerts if {
	alerts := exec_from_writable_dir.alert with input as exec_event("/tmp/x", 1000)
	alerts == {{"message": "/tmp/x executed from /tmp/ by uid 1000"}}
}

test_exec_from_dev_shm_alerts if {
	count(exec_from_writable_dir.alert) == 1 with input as exec_event("/dev/shm/.k", 0)
}

test_exec_from_usr_bin_is_quiet if {
	count(exec_from_writable_dir.alert) == 0 with input as exec_event("/usr/bin/ls", 0)
}

test_tmpfile_named_dir_is_quiet if {
	count(exec_from_writable_dir.alert) == 0 with input as exec_event("/tmpfoo/x", 0)
}
