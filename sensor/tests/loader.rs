//! The loader's error path, against the real kernel (as root): a program the
//! verifier rejects stops the load with the program's name, its object, the
//! kernel's reason and the verifier's last lines, not a bare errno.

use sensor::config::Config;
use sensor::kernel::{Kernel, KernelError};

#[test]
fn a_program_the_verifier_rejects_is_named_with_the_verifiers_reason() {
    let opts = sensor::run::kernel_options(&Config::default());
    let broken = sensor_bpf::testdata::verifier_rejects();
    let err = match Kernel::load_objects(&opts, &[broken]) {
        Ok(_) => panic!("the verifier accepted a null dereference"),
        Err(e) => e,
    };
    match &err {
        KernelError::Verifier { object, program, reason, log } => {
            assert_eq!(*object, "verifier_rejects");
            assert_eq!(program, "enter_openat");
            assert!(reason.contains("Permission denied") || reason.contains("Invalid argument"), "{reason}");
            assert!(log.contains("invalid mem access"), "the verifier's reason is in the log tail:\n{log}");
        }
        other => panic!("expected a verifier error (is this root?), got: {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("the verifier rejected program enter_openat (object verifier_rejects)"), "{msg}");
    assert!(msg.contains("invalid mem access"), "{msg}");
}
