package sensor.rules.shell_stdio_to_socket

import rego.v1

import data.sensor.lib.process

metadata := {
	"title": "Socket duplicated onto stdin, stdout or stderr",
	"description": "dup2(socket, 0..2) outside inetd-style launchers hands a program's terminal to the network: a reverse shell.",
	"severity": "critical",
	"events": ["dup"],
	"mitre": ["T1059.004", "T1095"],
}

alert contains {"message": msg} if {
	input.type == "dup"
	input.syscall.oldfd_is_socket == true
	not process.trusted(data.sensor.lists.inetd_like)
	msg := sprintf("%s (pid %d) dup'ed socket fd %d onto fd %d", [
		input.process.exe, input.process.pid,
		input.syscall.oldfd, input.syscall.newfd,
	])
}
