//! Syslog over real UDP, TCP and TCP+TLS listeners on 127.0.0.1; what
//! arrives is parsed as RFC 5424 and the body as JSON or CEF.

mod common;

use std::time::Duration;

use alerting::format::parse_cef_extension;
use alerting::{
    Alert, Alerter, AlertingConfig, DedupConfig, RecordFormat, Severity, SinkConfig, SinkType, SyslogTransport,
};
use common::*;

fn syslog(name: &str, addr: String, t: SyslogTransport, f: RecordFormat) -> SinkConfig {
    SinkConfig {
        kind: SinkType::Syslog,
        name: name.into(),
        address: Some(addr),
        transport: Some(t),
        format: Some(f),
        ..Default::default()
    }
}

fn cfg(dir: &tempfile::TempDir, sinks: Vec<SinkConfig>) -> AlertingConfig {
    AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: DedupConfig { window: Duration::ZERO, ..Default::default() },
        sinks,
        ..Default::default()
    }
}

fn hostile() -> Alert {
    let mut a = sample("net|exfil=1", Severity::Critical, "/usr/bin/cu\\rl");
    a.title = "Exfil | to = evil".into();
    a.message = "line1\nline2 a=b c\\d | pipe ] \"quoted\" ünïcødé 🚨".into();
    a.host = "web 01".into();
    a.event["net"] = serde_json::json!({"daddr": "10.0.0.9", "dport": 4444});
    a.event["file"] = serde_json::json!({"path": "/etc/sha=dow"});
    a.mitre = vec!["T1041".into(), "TA0010".into()];
    a
}

fn check_cef(msg: &str, a: &Alert, id: &str) {
    assert!(msg.starts_with("CEF:0|sensor|sensor|"), "{msg}");
    // Split the 7 unescaped header pipes.
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        if fields.len() == 7 {
            cur.push(c);
            continue;
        }
        match c {
            '\\' => {
                cur.push(chars.next().unwrap());
            }
            '|' => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    assert_eq!(fields.len(), 7, "{msg}");
    assert_eq!(fields[4], a.rule);
    assert_eq!(fields[5], a.title);
    assert_eq!(fields[6], "10");
    let ext: std::collections::HashMap<String, String> = parse_cef_extension(&cur).into_iter().collect();
    assert_eq!(ext["externalId"], id);
    assert_eq!(ext["msg"], a.message);
    assert_eq!(ext["cat"], a.rule);
    assert_eq!(ext["dst"], "10.0.0.9");
    assert_eq!(ext["dpt"], "4444");
    assert_eq!(ext["filePath"], "/etc/sha=dow");
    assert_eq!(ext["dvchost"], "web 01");
    assert!(!msg.contains('\n'), "CEF must be one line");
    let labels: Vec<_> = ext.iter().filter(|(k, _)| k.ends_with("Label")).map(|(_, v)| v.clone()).collect();
    assert!(labels.contains(&"exe".to_string()) && labels.contains(&"mitre".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_tcp_and_tls_receive_rfc5424_with_json_and_cef() {
    let dir = tempfile::tempdir().unwrap();
    let (udp_addr, udp_msgs) = udp_listener().await;
    let (tcp_addr, tcp_msgs) = tcp_listener().await;
    let (tls_addr, tls_msgs, ca_pem) = tls_listener().await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let mut tls = syslog("tls", format!("localhost:{}", tls_addr.port()), SyslogTransport::Tls, RecordFormat::Json);
    tls.ca_file = Some(ca);
    let alerter = Alerter::start(cfg(
        &dir,
        vec![
            syslog("udp", udp_addr.to_string(), SyslogTransport::Udp, RecordFormat::Cef),
            syslog("tcp", tcp_addr.to_string(), SyslogTransport::Tcp, RecordFormat::Json),
            syslog("tcpcef", tcp_addr.to_string(), SyslogTransport::Tcp, RecordFormat::Cef),
            tls,
        ],
    ))
    .unwrap();
    let a = hostile();
    let id = alerter.submit(a.clone()).unwrap();
    let mut b = sample("plain", Severity::Low, "/bin/ls");
    b.message = "x".repeat(4096);
    let id_b = alerter.submit(b.clone()).unwrap();

    assert!(
        wait_until(Duration::from_secs(10), || udp_msgs.lock().unwrap().len() == 2
            && tcp_msgs.lock().unwrap().len() == 4
            && tls_msgs.lock().unwrap().len() == 2)
        .await,
        "{:?}",
        alerter.stats()
    );

    // UDP + CEF
    for m in udp_msgs.lock().unwrap().iter() {
        let p = parse_5424(m).unwrap();
        assert_eq!(p.version, 1);
        assert_eq!(p.app_name, "sensor");
        let sd_id = &p.sd[0].1.iter().find(|(k, _)| k == "id").unwrap().1;
        if *sd_id == id {
            assert_eq!(p.pri, 10 * 8 + 2, "authpriv.crit");
            assert_eq!(p.hostname, "web01");
            check_cef(&p.msg, &a, &id);
            let rule = &p.sd[0].1.iter().find(|(k, _)| k == "rule").unwrap().1;
            assert_eq!(rule, &a.rule);
        } else {
            assert_eq!(*sd_id, id_b);
            assert_eq!(p.pri, 10 * 8 + 5, "authpriv.notice");
            assert!(p.msg.starts_with("CEF:0|"));
        }
    }
    // TCP: JSON and CEF framed with octet counting on the same listener.
    let tcp = tcp_msgs.lock().unwrap().clone();
    let mut json_seen = 0;
    for m in &tcp {
        let p = parse_5424(m).unwrap();
        if p.msg.starts_with("CEF:") {
            if p.msg.contains(&id) {
                check_cef(&p.msg, &a, &id);
            }
        } else {
            let v: Alert = serde_json::from_str(&p.msg).unwrap();
            if v.id == id {
                assert_eq!(v, {
                    let mut w = a.clone();
                    w.id = id.clone();
                    w
                });
            } else {
                assert_eq!(v.message.len(), 4096);
            }
            json_seen += 1;
        }
    }
    assert_eq!(json_seen, 2);
    // TLS + JSON
    for m in tls_msgs.lock().unwrap().iter() {
        let p = parse_5424(m).unwrap();
        let v: Alert = serde_json::from_str(&p.msg).unwrap();
        assert!(v.id == id || v.id == id_b);
    }
    alerter.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reconnects_after_the_receiver_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver reads one frame per connection and then hangs up, so
    // every later alert needs a fresh connection.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let msgs: Messages = Default::default();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (m2, c2) = (msgs.clone(), conns.clone());
    tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        while let Ok((s, _)) = l.accept().await {
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut r = tokio::io::BufReader::new(s);
            let mut len = Vec::new();
            if r.read_until(b' ', &mut len).await.unwrap_or(0) == 0 {
                continue;
            }
            let n: usize = std::str::from_utf8(&len[..len.len() - 1]).unwrap().parse().unwrap();
            let mut buf = vec![0u8; n];
            r.read_exact(&mut buf).await.unwrap();
            m2.lock().unwrap().push(String::from_utf8(buf).unwrap());
            drop(r); // hang up
        }
    });
    let mut s = syslog("tcp", addr.to_string(), SyslogTransport::Tcp, RecordFormat::Json);
    s.retry.initial_backoff = Duration::from_millis(10);
    s.retry.max_backoff = Duration::from_millis(50);
    let alerter = Alerter::start(cfg(&dir, vec![s])).unwrap();
    alerter.submit(sample("r", Severity::High, "/a")).unwrap();
    for i in 0..5 {
        // One at a time so each write meets an already-closed connection.
        assert!(
            wait_until(Duration::from_secs(5), || msgs.lock().unwrap().len() > i).await,
            "frame {i} lost: {:?}",
            alerter.stats()
        );
        if i < 4 {
            alerter.submit(sample("r", Severity::High, &format!("/b{i}"))).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(conns.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    alerter.shutdown(Duration::from_secs(1)).await;
}
