package sensor.rules.cgroup_release_agent_write_test

import rego.v1

import data.sensor.rules.cgroup_release_agent_write as r
import data.sensor.test.fixtures as f

test_release_agent_write_fires if {
	count(r.alert) == 1 with input as f.open("/usr/bin/bash", "/tmp/cgrp/release_agent", ["O_WRONLY", "O_CREAT", "O_TRUNC"])
	count(r.alert) == 1 with input as f.open("/usr/bin/bash", "/sys/fs/cgroup/rdma/x/notify_on_release", ["O_WRONLY"])
}

test_read_and_systemd_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/sys/fs/cgroup/memory/release_agent")
	count(r.alert) == 0 with input as f.write("/usr/lib/systemd/systemd", "/sys/fs/cgroup/systemd/release_agent")
}
