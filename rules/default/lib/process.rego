# Helpers shared by rules. Not a rule: its package is outside sensor.rules.
package sensor.lib.process

import rego.v1

# The process runs inside a container.
in_container if {
	is_string(input.process.container_id)
	input.process.container_id != ""
}

# The executable is a known interactive shell.
is_shell if input.process.exe in data.sensor.lists.shells
