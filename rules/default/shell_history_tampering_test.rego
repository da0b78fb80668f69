package sensor.rules.shell_history_tampering_test

import rego.v1

import data.sensor.rules.shell_history_tampering as r
import data.sensor.test.fixtures as f

# `> ~/.bash_history`: the shell opens with O_TRUNC and mode 0666.
test_redirect_truncation_fires if {
	ev := f.with_over(f.write("/usr/bin/bash", "/root/.bash_history"), {"file": {"mode": 438}})
	count(r.alert) == 1 with input as ev
}

test_unlink_and_dev_null_link_fire if {
	count(r.alert) == 1 with input as f.fileop("unlink", "/usr/bin/rm", "/home/u/.zsh_history", null)
	count(r.alert) == 1 with input as f.fileop("symlink", "/usr/bin/ln", "/dev/null", "/root/.bash_history")
}

# bash saving its history on exit: O_TRUNC with mode 0600.
test_shell_history_save_is_quiet if {
	ev := f.with_over(f.write("/usr/bin/bash", "/root/.bash_history"), {"file": {"mode": 384}})
	count(r.alert) == 0 with input as ev
}

test_zsh_history_rewrite_is_quiet if {
	count(r.alert) == 0 with input as f.fileop("rename", "/usr/bin/zsh", "/root/.zsh_history.new", "/root/.zsh_history")
}

test_append_and_other_files_are_quiet if {
	count(r.alert) == 0 with input as f.open("/usr/bin/bash", "/root/.bash_history", ["O_WRONLY", "O_APPEND"])
	count(r.alert) == 0 with input as f.fileop("unlink", "/usr/bin/rm", "/tmp/history.txt", null)
}
