package sensor.rules.process_masquerading_test

import rego.v1

import data.sensor.rules.process_masquerading as r
import data.sensor.test.fixtures as f

test_fake_kworker_fires if {
	count(r.alert) == 1 with input as f.exec("/tmp/.x/miner", ["[kworker/0:2]"])
	count(r.alert) == 1 with input as f.with_over(f.exec("/usr/bin/python3.11", ["python3", "x.py"]), {"process": {"comm": "kworker/1:0"}})
}

test_fake_sshd_fires if {
	count(r.alert) == 1 with input as f.exec("/tmp/sshd", ["sshd"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/python3.11", ["sshd", "-D"])
}

test_real_sshd_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/sbin/sshd", ["/usr/sbin/sshd", "-D"])
	count(r.alert) == 0 with input as f.exec("/usr/lib/openssh/sshd-session", ["sshd", "-R"])
}

test_init_is_systemd_is_quiet if {
	ev := f.with_over(f.exec("/usr/lib/systemd/systemd", ["/sbin/init"]), {"process": {"comm": "init"}})
	count(r.alert) == 0 with input as ev
}

test_systemd_helpers_are_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/lib/systemd/systemd-journald", ["/usr/lib/systemd/systemd-journald"])
}

test_init_script_is_quiet if {
	ev := f.with_over(f.exec_with("/usr/bin/dash", ["/bin/sh", "/etc/init.d/cron", "restart"], {"exec": {"filename": "/etc/init.d/cron"}}), {"process": {"comm": "cron"}})
	count(r.alert) == 0 with input as ev
}

test_bash_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["-bash"])
}
