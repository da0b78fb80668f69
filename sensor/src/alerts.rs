//! The bridge from policy alerts (JSON) to the alerting crate's durable
//! outbox and sinks. Submitting never blocks the pipeline: the alerter's
//! queue is bounded and a refusal is counted.

use crate::pipeline::AlertSink;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct AlerterSink {
    pub alerter: Arc<alerting::Alerter>,
    /// Alerts the alerter refused (queue full, closed) or that did not convert.
    pub refused: Arc<AtomicU64>,
}

impl AlertSink for AlerterSink {
    fn submit(&mut self, alert: &Value) {
        let ok = serde_json::from_value::<alerting::Alert>(alert.clone())
            .ok()
            .map(|a| self.alerter.submit(a).is_ok())
            .unwrap_or(false);
        if !ok {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A sink health change as a synthetic event (`sink_degraded` / `sink_recovered`).
pub fn health_event(ev: &alerting::SinkHealthEvent) -> Value {
    let mut v = serde_json::to_value(ev).unwrap_or_default();
    let kind = match ev {
        alerting::SinkHealthEvent::SinkDegraded { .. } => "sink_degraded",
        alerting::SinkHealthEvent::SinkRecovered { .. } => "sink_recovered",
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), kind.into());
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_alert_json_converts_to_an_alerting_alert() {
        let v = serde_json::json!({
            "type": "alert", "ts": "2026-11-25T17:04:41.123456789Z", "host": "h", "rule": "read_shadow",
            "severity": "high", "title": "t", "message": "m", "mitre": ["T1003.008"],
            "event": {"type": "open", "process": {"exe": "/usr/bin/cat"}},
        });
        let a: alerting::Alert = serde_json::from_value(v).unwrap();
        assert_eq!(a.rule, "read_shadow");
        assert_eq!(a.severity, alerting::Severity::High);
        assert_eq!(a.event_str("process.exe").as_deref(), Some("/usr/bin/cat"));
    }
}
