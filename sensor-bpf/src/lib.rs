//! The kernel side of the sensor: BPF objects compiled from `bpf/*.bpf.c` by
//! build.rs, embedded here, and the `#[repr(C)]` mirror of the wire format
//! in `bpf/include/events.h`.
//!
//! This crate only carries bytes and types; loading and attaching is the
//! daemon's job (`sensor::kernel`).

pub mod wire;

/// Bytes of an ELF object, aligned so the object parser can read it in place.
#[repr(C, align(32))]
pub struct Aligned<B: ?Sized> {
    pub bytes: B,
}

macro_rules! object {
    ($name:literal) => {{
        static OBJ: &Aligned<[u8]> =
            &Aligned { bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".bpf.o")) };
        &OBJ.bytes
    }};
}

/// One compiled hook family.
#[derive(Clone, Copy, Debug)]
pub struct Object {
    /// Short name, also the source file's stem (`process` for process.bpf.c).
    pub name: &'static str,
    pub bytes: &'static [u8],
}

/// Process life cycle: exec, fork, exit (tp_btf sched_process_*).
pub fn process() -> Object {
    Object { name: "process", bytes: object!("process") }
}

/// File operations (syscall tracepoints).
pub fn file() -> Object {
    Object { name: "file", bytes: object!("file") }
}

/// TCP life cycle, accept and DNS datagrams.
pub fn net() -> Object {
    Object { name: "net", bytes: object!("net") }
}

/// L7 payloads of HTTP, Redis and PostgreSQL connections (syscall tracepoints).
pub fn l7() -> Object {
    Object { name: "l7", bytes: object!("l7") }
}

/// Tiny programs of each type, for `sensor probe` (never attached by `run`).
pub fn probe() -> Object {
    Object { name: "probe", bytes: object!("probe") }
}

/// Deliberately broken objects, for tests of the loader's error paths.
#[doc(hidden)]
pub mod testdata {
    use super::{Aligned, Object};

    /// `enter_openat` dereferences a map lookup without a null check: the
    /// verifier rejects it with "invalid mem access".
    pub fn verifier_rejects() -> Object {
        Object { name: "verifier_rejects", bytes: object!("verifier_rejects") }
    }
}

/// Every object the daemon loads, in load order.
pub fn all() -> [Object; 4] {
    [process(), file(), net(), l7()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn objects_are_bpf_elf() {
        for obj in super::all().into_iter().chain([super::probe()]) {
            let b = obj.bytes;
            assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", obj.name);
            // e_machine at 18..20: EM_BPF = 247
            assert_eq!(u16::from_le_bytes([b[18], b[19]]), 247, "{} is not a BPF object", obj.name);
        }
    }
}
