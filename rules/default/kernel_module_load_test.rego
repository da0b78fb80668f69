package sensor.rules.kernel_module_load_test

import rego.v1

import data.sensor.rules.kernel_module_load as r
import data.sensor.test.fixtures as f

test_finit_module_fires if {
	ev := f.syscall("module_load", "/usr/bin/python3.11", {"name": "finit_module", "path": "/tmp/rk.ko", "params": "", "success": false})
	count(r.alert) == 1 with input as ev
}

test_insmod_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/kmod", ["insmod", "/tmp/rk.ko"])
	count(r.alert) == 1 with input as f.exec("/usr/sbin/modprobe", ["modprobe", "dummy"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/kmod", ["kmod", "insmod", "/tmp/rk.ko"])
}

test_modprobe_queries_and_removal_are_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/sbin/modprobe", ["modprobe", "-r", "dummy"])
	count(r.alert) == 0 with input as f.exec("/usr/sbin/modprobe", ["modprobe", "--show-depends", "dummy"])
	count(r.alert) == 0 with input as f.exec("/usr/bin/kmod", ["lsmod"])
}

test_udev_and_kernel_requests_are_quiet if {
	count(r.alert) == 0 with input as f.syscall("module_load", "/usr/lib/systemd/systemd-udevd", {"name": "finit_module", "path": "/lib/modules/x/e1000.ko"})
	count(r.alert) == 0 with input as f.with_over(f.exec("/usr/sbin/modprobe", ["/sbin/modprobe", "-q", "--", "net-pf-17"]), {"process": {"ppid": 2}})
}
