package sensor.rules.cron_modified_test

import rego.v1

import data.sensor.rules.cron_modified as r
import data.sensor.test.fixtures as f

test_cron_d_write_fires if {
	count(r.alert) == 1 with input as f.write("/usr/bin/bash", "/etc/cron.d/backdoor")
	count(r.alert) == 1 with input as f.write("/usr/bin/tee", "/etc/crontab")
	count(r.alert) == 1 with input as f.write("/usr/bin/python3.11", "/var/spool/cron/crontabs/root")
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/j", "/etc/cron.daily/j")
}

test_crontab_tool_is_quiet if {
	count(r.alert) == 0 with input as f.fileop("rename", "/usr/bin/crontab", "/var/spool/cron/crontabs/tmp.X", "/var/spool/cron/crontabs/root")
}

test_package_manager_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/dpkg", "/etc/cron.daily/apt-compat")
}

test_read_and_anacron_spool_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/etc/crontab")
	count(r.alert) == 0 with input as f.write("/usr/sbin/anacron", "/var/spool/anacron/cron.daily")
}
