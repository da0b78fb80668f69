package sensor.rules.shell_history_tampering

import rego.v1

import data.sensor.lib.file
import data.sensor.lib.process

metadata := {
	"title": "Shell history cleared",
	"description": "Deleting, truncating or pointing a history file at /dev/null hides the commands an intruder typed.",
	"severity": "high",
	"events": ["open", "unlink", "symlink", "rename"],
	"mitre": ["T1070.003"],
}

alert contains a if {
	input.type == "open"
	"O_TRUNC" in input.file.flags
	a := truncated
}

alert contains a if {
	input.type == "unlink"
	history_file(input.file.path)
	file.ok
	a := {"message": sprintf("%s deleted %s", [input.process.exe, input.file.path])}
}

alert contains a if {
	input.type == "symlink"
	history_file(input.file.new_path)
	file.ok
	a := {"message": sprintf("%s linked %s to %s", [input.process.exe, input.file.new_path, input.file.path])}
}

# Moving another file over the history (zsh's own .zsh_history.new rename aside).
alert contains a if {
	input.type == "rename"
	history_file(input.file.new_path)
	file.ok
	not own_history_rewrite
	a := {"message": sprintf("%s replaced %s with %s", [input.process.exe, input.file.new_path, input.file.path])}
}

truncated := {"message": msg} if {
	history_file(input.file.path)
	file.ok
	not own_history_save
	msg := sprintf("%s truncated %s", [input.process.exe, input.file.path])
}

history_file(p) if {
	is_string(p)
	some name in data.sensor.lists.history_files
	endswith(p, concat("", ["/", name]))
}

# Shells and readline programs rewrite their history on exit with
# open(O_WRONLY|O_CREAT|O_TRUNC, 0600); a `> ~/.bash_history` redirection or
# truncate-by-script asks for 0666.
own_history_save if {
	input.file.mode == 384
	history_writer
}

own_history_rewrite if {
	history_writer
	startswith(input.file.path, input.file.new_path)
}

history_writer if {
	name := trim_right(process.exe_name, "0123456789.") # the name without version digits
	name in data.sensor.lists.history_writers
}
