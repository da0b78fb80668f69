package sensor.rules.download_piped_to_shell

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Download piped straight into a shell or interpreter",
	"description": "curl|sh and wget|bash run unreviewed remote code; a common initial-access and dropper pattern.",
	"severity": "high",
	"events": ["exec"],
	"mitre": ["T1059.004", "T1105"],
}

alert contains {"message": msg} if {
	input.type == "exec"
	process.is_shell
	some arg in process.argv_tail
	mentions_download(arg) # both patterns need one of these words: most commands skip the regexes
	piped_download(arg)
	msg := sprintf("%s runs a download through an interpreter: %s", [input.process.exe, arg])
}

interp := `(sudo[ \t\n]+(-[^ \t\n]+[ \t\n]+)*)?([^ \t\n]*/)?(sh|bash|dash|zsh|ksh|ash|python[0-9.]*|perl|ruby|php|node)($|[ \t\n;&|)])`

mentions_download(arg) if contains(arg, "curl")

mentions_download(arg) if contains(arg, "wget")

piped_download(arg) if regex.match(concat("", [`(^|[ \t\n;&|(/])(curl|wget)[ \t\n][^|]*\|[ \t\n]*`, interp]), arg)

# bash <(curl ...), sh -c "$(wget -O- ...)"
piped_download(arg) if regex.match(`(<\(|\$\(|\x60)[ \t\n]*([^ \t\n]*/)?(curl|wget)[ \t\n]`, arg)
