package sensor.rules.shell_rc_modified_test

import rego.v1

import data.sensor.rules.shell_rc_modified as r
import data.sensor.test.fixtures as f

test_bashrc_fires if {
	count(r.alert) == 1 with input as f.open("/usr/bin/bash", "/root/.bashrc", ["O_WRONLY", "O_APPEND", "O_CREAT"])
	count(r.alert) == 1 with input as f.write("/usr/bin/python3.11", "/home/u/.profile")
	count(r.alert) == 1 with input as f.write("/usr/bin/tee", "/etc/profile.d/zz.sh")
	count(r.alert) == 1 with input as f.write("/usr/bin/tee", "/etc/environment")
}

test_reading_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/bash", "/root/.bashrc")
}

test_package_manager_is_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/dpkg", "/etc/bash.bashrc")
}

test_other_dotfiles_are_quiet if {
	count(r.alert) == 0 with input as f.write("/usr/bin/git", "/tmp/repo/.git/config")
	count(r.alert) == 0 with input as f.write("/usr/bin/vim", "/root/.bashrc.swp")
}
