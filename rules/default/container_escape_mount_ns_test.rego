package sensor.rules.container_escape_mount_ns_test

import rego.v1

import data.sensor.rules.container_escape_mount_ns as r
import data.sensor.test.fixtures as f

test_mount_in_container_fires if {
	ev := f.in_container(f.syscall("mount", "/usr/bin/mount", {"name": "mount", "source": "/dev/sda1", "target": "/mnt", "fstype": "ext4", "success": true}))
	count(r.alert) == 1 with input as ev
}

test_unshare_in_container_fires if {
	count(r.alert) == 1 with input as f.in_container(f.syscall("namespace", "/usr/bin/unshare", {"name": "unshare", "flags": 131072}))
}

test_nsenter_from_container_fires if {
	count(r.alert) == 1 with input as f.in_container(f.exec("/usr/bin/nsenter", ["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh"]))
}

test_host_mount_and_unshare_are_quiet if {
	count(r.alert) == 0 with input as f.syscall("mount", "/usr/bin/mount", {"name": "mount", "source": "tmpfs", "target": "/tmp/x", "fstype": "tmpfs"})
	count(r.alert) == 0 with input as f.syscall("namespace", "/usr/bin/unshare", {"name": "unshare", "flags": 67108864})
}
