//! Decode + enrich throughput on one core (target: >= 1M events/s): the
//! reader thread's work per record, without the kernel. A realistic mix:
//! mostly opens with canonical paths, some relative failed opens, execs,
//! connects, from a few hundred known processes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sensor::decode::decode;
use sensor::enrich::Enricher;
use sensor::enrich::proctable::ProcTable;
use sensor_bpf::wire::*;

fn bytes<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: T is a repr(C) wire struct; only its bytes are read.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }.to_vec()
}

fn hdr(ty: u32, pid: u32) -> EventHeader {
    let mut comm = [0u8; 16];
    comm[..5].copy_from_slice(b"nginx");
    EventHeader {
        ty,
        pid,
        tid: pid,
        ppid: 1,
        ts_ns: 1_000_000 + pid as u64,
        start_time: 42,
        comm,
        ..Default::default()
    }
}

fn open_record(pid: u32, resolved: bool) -> Vec<u8> {
    let (path, base): (&[u8], &[u8]) = if resolved {
        (b"/var/www/html/static/app.js\0", b"")
    } else {
        (b"../conf/missing.conf\0", b"/etc/nginx/sites\0")
    };
    let e = FileEvent {
        hdr: hdr(EV_OPEN, pid),
        result: if resolved { 12 } else { -2 },
        flags: 0o2000000,
        path_len: path.len() as u16,
        base_len: base.len() as u16,
        info: if resolved { FILE_PATH_RESOLVED } else { 0 },
        ..Default::default()
    };
    let mut b = bytes(&e);
    b.extend_from_slice(path);
    b.extend_from_slice(base);
    b
}

fn exec_record(pid: u32) -> Vec<u8> {
    let args = b"/usr/bin/curl\0-s\0http://10.0.0.1/health\0";
    let e = ExecEvent {
        hdr: hdr(EV_EXEC, pid),
        args_len: args.len() as u32,
        argc: 3,
        exe_len: 14,
        cwd_len: 2,
        filename_len: 14,
        ..Default::default()
    };
    let mut b = bytes(&e);
    b.extend_from_slice(args);
    b.extend_from_slice(b"/usr/bin/curl\0/\0/usr/bin/curl\0");
    b
}

fn connect_record(pid: u32) -> Vec<u8> {
    let mut e = NetEvent {
        hdr: hdr(EV_CONNECT, pid),
        family: 2,
        sport: 40000,
        dport: 5432,
        direction: 1,
        ..Default::default()
    };
    e.saddr[..4].copy_from_slice(&[10, 0, 0, 2]);
    e.daddr[..4].copy_from_slice(&[10, 0, 0, 9]);
    bytes(&e)
}

fn bench(c: &mut Criterion) {
    // 80% resolved opens, 10% failed relative opens, 5% connects, 5% execs
    let mut records = Vec::new();
    for i in 0..1000u32 {
        let pid = 1000 + (i % 300);
        records.push(match i % 20 {
            0 => exec_record(pid),
            1 => connect_record(pid),
            2 | 3 => open_record(pid, false),
            _ => open_record(pid, true),
        });
    }
    // processes known in advance, as after the /proc scan
    let mut table = ProcTable::with_procfs(65536, "/nonexistent");
    for pid in 1000..1300u32 {
        let exec = sensor::decode::Exec {
            exe: "/usr/sbin/nginx".into(),
            args: vec!["nginx".into()],
            cwd: "/".into(),
            ..Default::default()
        };
        let h = sensor::decode::Header { pid, ppid: 1, start_time: 42, ..Default::default() };
        table.on_exec(&h, &exec);
    }
    let mut enricher = Enricher::new(table, "bench-host");
    let mut g = c.benchmark_group("reader");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                std::hint::black_box(decode(r).unwrap());
            }
        })
    });
    g.bench_function("decode+enrich", |b| {
        b.iter(|| {
            for r in &records {
                // exec records re-read /proc/PID/cgroup for unknown pids: that is part of the cost
                std::hint::black_box(enricher.enrich(decode(r).unwrap()));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
