# Helpers about file events. Not a rule: its package is outside sensor.rules.
package sensor.lib.file

import rego.v1

lists := data.sensor.lists

write_flags := {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"}

# The operation failed (events without `success` count as successful).
failed if input.file.success == false

ok if not failed

# An open that may modify the file.
open_is_write if {
	input.type == "open"
	some f in input.file.flags
	f in write_flags
}

# The event modifies the file system (a write open, rename, unlink, link,
# symlink or chmod).
is_write if open_is_write

is_write if input.type in {"rename", "unlink", "link", "symlink", "chmod"}

# The paths a modifying event changes: the written, removed or chmod'ed file,
# both ends of a rename, the new name of a link.
changed_paths contains input.file.path if open_is_write

changed_paths contains input.file.path if input.type in {"rename", "unlink", "chmod"}

changed_paths contains input.file.new_path if {
	input.type in {"rename", "link", "symlink"}
	is_string(input.file.new_path)
}

# What happened, for messages.
action := sprintf("wrote %s", [input.file.path]) if open_is_write

action := sprintf("renamed %s to %s", [input.file.path, input.file.new_path]) if input.type == "rename"

action := sprintf("deleted %s", [input.file.path]) if input.type == "unlink"

action := sprintf("changed the mode of %s to %s", [input.file.path, octal(input.file.mode)]) if input.type == "chmod"

action := sprintf("linked %s to %s", [input.file.new_path, input.file.path]) if input.type in {"link", "symlink"}

# `path` is under one of `prefixes` (or equal to one of them).
under(path, prefixes) if {
	is_string(path)
	strings.any_prefix_match(path, prefixes) # one builtin call, not a VM loop
}

# A credential file whose theft or replacement gives access (shadow, sudoers,
# SSH private and host keys, root's authorized_keys, /etc/passwd).
is_sensitive(path) if path in lists.sensitive_files

is_sensitive(path) if under(path, lists.sensitive_prefixes)

is_sensitive(path) if is_ssh_private_key(path)

# An SSH private key: a user's ~/.ssh/id_* (not .pub) or a host key.
is_ssh_private_key(path) if {
	is_string(path)
	contains(path, "/.ssh/id_")
	not endswith(path, ".pub")
}

is_ssh_private_key(path) if {
	is_string(path)
	startswith(path, "/etc/ssh/ssh_host_") # implied by the pattern, and much cheaper
	endswith(path, "_key")
	regex.match(`^/etc/ssh/ssh_host_[a-z0-9]+_key$`, path)
}

# A mode as four octal digits ("4755"); regorus's sprintf has no %o.
octal(mode) := sprintf("%d%d%d%d", [
	bits.and(bits.rsh(mode, 9), 7),
	bits.and(bits.rsh(mode, 6), 7),
	bits.and(bits.rsh(mode, 3), 7),
	bits.and(mode, 7),
])
