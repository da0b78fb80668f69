package sensor.rules.read_cloud_credentials_test

import rego.v1

import data.sensor.rules.read_cloud_credentials as r
import data.sensor.test.fixtures as f

test_cat_aws_credentials_fires if {
	count(r.alert) == 1 with input as f.read("/usr/bin/cat", "/home/bob/.aws/credentials")
}

test_other_credentials_fire if {
	count(r.alert) == 1 with input as f.read("/usr/bin/curl", "/root/.kube/config")
	count(r.alert) == 1 with input as f.read("/tmp/x", "/root/.config/gcloud/application_default_credentials.json")
	count(r.alert) == 1 with input as f.read("/usr/bin/tar", "/root/.docker/config.json")
}

test_clis_are_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/local/bin/kubectl", "/root/.kube/config")
	count(r.alert) == 0 with input as f.read("/usr/local/bin/aws", "/root/.aws/credentials")
	count(r.alert) == 0 with input as f.read("/usr/bin/docker-credential-pass", "/root/.docker/config.json")
}

test_gcloud_python_is_quiet if {
	ev := f.with_over(f.read("/usr/bin/python3.11", "/root/.config/gcloud/credentials.db"), {"process": {"args": ["python3", "/usr/lib/google-cloud-sdk/lib/gcloud.py", "auth", "list"]}})
	count(r.alert) == 0 with input as ev
}

test_aws_config_is_quiet if {
	count(r.alert) == 0 with input as f.read("/usr/bin/cat", "/root/.aws/config")
}
