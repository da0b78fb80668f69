package sensor.rules.log_tampering_test

import rego.v1

import data.sensor.rules.log_tampering as r
import data.sensor.test.fixtures as f

test_truncate_auth_log_fires if {
	alerts := r.alert with input as f.write("/usr/bin/bash", "/var/log/auth.log")
	alerts == {{"message": "/usr/bin/bash truncated /var/log/auth.log"}}
}

test_unlink_and_rename_fire if {
	count(r.alert) == 1 with input as f.fileop("unlink", "/usr/bin/rm", "/var/log/wtmp", null)
	count(r.alert) == 1 with input as f.fileop("rename", "/usr/bin/mv", "/tmp/empty", "/var/log/syslog")
}

test_logrotate_and_journald_are_quiet if {
	count(r.alert) == 0 with input as f.fileop("rename", "/usr/sbin/logrotate", "/var/log/syslog", "/var/log/syslog.1")
	count(r.alert) == 0 with input as f.fileop("unlink", "/usr/lib/systemd/systemd-journald", "/var/log/journal/x/system@1.journal", null)
	count(r.alert) == 0 with input as f.with_lineage(f.fileop("unlink", "/usr/bin/rm", "/var/log/x.gz", null), ["/usr/bin/dash", "/usr/sbin/logrotate"])
}

test_append_is_quiet if {
	count(r.alert) == 0 with input as f.open("/usr/sbin/rsyslogd", "/var/log/syslog", ["O_WRONLY", "O_APPEND", "O_CREAT"])
	count(r.alert) == 0 with input as f.open("/usr/bin/bash", "/var/log/mylog", ["O_WRONLY", "O_APPEND", "O_CREAT"])
}
