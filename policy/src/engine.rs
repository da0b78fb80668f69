//! Evaluating events against a compiled [`PolicySet`].

use crate::config::PolicyConfig;
use crate::error::PolicyErrors;
use crate::model::{Alert, Evaluation, PolicyCounters, RESERVED_ALERT_KEYS, RuleRuntimeError, RuntimeErrorKind};
use crate::prefilter;
use crate::reload::Shared;
use crate::set::{PathTrie, PolicySet};
use lru::LruCache;
use regorus::Value;
use regorus::rvm::vm::{RegoVM, VmError};
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A runtime error of one rule is logged at most this often (the rest are counted).
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// VM instructions between wall-clock checks: keeps clock reads off the hot path.
const TIMER_CHECK_INTERVAL: u32 = 1024;
/// A VM run's fixed cost in rules that fail at once (measured with callgrind on
/// the bench mix: ~19k instructions of setup, ~3k per such rule); decides between
/// running a few surviving rules alone and the whole group at once.
const RUN_ALONE_COST_RATIO: usize = 6;
/// Distinct pre-filtered input paths resolved without a heap allocation.
const FILTER_SLOTS_ON_STACK: usize = 32;

/// Counters shared by every evaluator of one engine or reloadable handle.
#[derive(Debug, Default)]
pub(crate) struct CounterCells {
    evaluations: AtomicU64,
    rule_evaluations: AtomicU64,
    alerts: AtomicU64,
    suppressed: AtomicU64,
    runtime_errors: AtomicU64,
    limit_hits: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    pub(crate) reloads: AtomicU64,
    pub(crate) reload_failures: AtomicU64,
    rule_errors: Mutex<BTreeMap<String, u64>>,
}

impl CounterCells {
    pub(crate) fn snapshot(&self) -> PolicyCounters {
        PolicyCounters {
            evaluations: self.evaluations.load(Relaxed),
            rule_evaluations: self.rule_evaluations.load(Relaxed),
            alerts: self.alerts.load(Relaxed),
            suppressed: self.suppressed.load(Relaxed),
            runtime_errors: self.runtime_errors.load(Relaxed),
            limit_hits: self.limit_hits.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            reloads: self.reloads.load(Relaxed),
            reload_failures: self.reload_failures.load(Relaxed),
            rule_errors: self.rule_errors.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// A rule's alert as produced by Rego, before the event and rule fields are added;
/// this is what the decision cache stores.
#[derive(Debug, Clone)]
struct RawAlert {
    rule: u32,
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

/// Per-rule cost measured by [`PolicyEngine::profile_rules`].
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct RuleCost {
    pub rule: String,
    /// Events of a type the rule subscribes to.
    pub events: u64,
    /// Of those, events its pre-filter lets through (all of them without a filter).
    pub prefilter_passes: u64,
    /// Events the rule ran on alone, and the total of their fastest wall times.
    pub runs: u64,
    pub vm_nanos: u64,
}

impl RuleCost {
    /// Mean VM time of one run of the rule alone, in microseconds.
    pub fn us_per_run(&self) -> f64 {
        self.vm_nanos as f64 / 1000.0 / self.runs.max(1) as f64
    }

    /// Expected VM time per subscribed event when pre-filtered, in microseconds.
    pub fn us_per_event_filtered(&self) -> f64 {
        self.us_per_run() * self.prefilter_passes as f64 / self.events.max(1) as f64
    }
}

/// Key: event type + projected input; value: the rules' raw alerts.
type DecisionCache = LruCache<Box<[u8]>, Arc<[RawAlert]>>;

/// Evaluates events. Owns a VM and a decision cache, so use one per pipeline thread
/// (it is `Send`); evaluation takes `&mut self` and never blocks on other threads.
///
/// An engine obtained from [`crate::ReloadableEngine::engine`] picks up a reloaded
/// set between two events, so every event is evaluated exactly once, by one set.
pub struct PolicyEngine {
    set: Arc<PolicySet>,
    vm: RegoVM,
    cache: Option<DecisionCache>,
    key: Vec<u8>,
    /// Scratch: the rules of the current event's group that pass their pre-filter,
    /// and per group position whether it does.
    survivors: Vec<u32>,
    alive: Vec<bool>,
    /// Off only in tests comparing filtered and unfiltered results.
    use_prefilters: bool,
    counters: Arc<CounterCells>,
    source: Option<Arc<Shared>>,
    /// Per rule: when its last runtime error was logged, and how many were not.
    error_log: Vec<(Option<Instant>, u64)>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("rules", &self.set.rules().len())
            .field("generation", &self.set.generation())
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Loads, validates and compiles the configured rules.
    pub fn load(config: &PolicyConfig, embedded: &[(&str, &str)]) -> Result<Self, PolicyErrors> {
        let set = PolicySet::load(config, embedded)?;
        Ok(Self::new(Arc::new(set)))
    }

    /// An engine over an already compiled set.
    pub fn new(set: Arc<PolicySet>) -> Self {
        Self::with_parts(set, Arc::default(), None)
    }

    pub(crate) fn with_parts(set: Arc<PolicySet>, counters: Arc<CounterCells>, source: Option<Arc<Shared>>) -> Self {
        let mut engine = PolicyEngine {
            vm: RegoVM::new(),
            cache: None,
            key: Vec::with_capacity(256),
            survivors: Vec::new(),
            alive: Vec::new(),
            use_prefilters: true,
            counters,
            source,
            error_log: Vec::new(),
            set: set.clone(),
        };
        engine.install(set);
        engine
    }

    fn install(&mut self, set: Arc<PolicySet>) {
        let mut vm = RegoVM::new();
        if let Some(program) = &set.program {
            vm.load_program(program.clone());
            // Validated when the set was built; a failure here cannot happen.
            if let Err(e) = vm.set_data(set.data.clone()) {
                tracing::error!(error = %e, "policy data rejected by the VM");
            }
        }
        // Builtin type errors are rule bugs: surface them instead of silently
        // making the rule undefined (the test runner does the same).
        vm.set_strict_builtin_errors(true);
        vm.set_max_instructions(set.limits.max_instructions);
        vm.set_execution_timer_config(set.limits.timeout.map(|limit| ExecutionTimerConfig {
            limit,
            check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
        }));
        self.vm = vm;
        self.cache = NonZeroUsize::new(set.limits.cache_size).map(LruCache::new);
        self.error_log = vec![(None, 0); set.rules().len()];
        self.set = set;
    }

    /// Turns the static pre-filters off (on by default); for benchmarks and
    /// differential tests only: results are the same either way.
    #[doc(hidden)]
    pub fn set_prefilters(&mut self, on: bool) {
        self.use_prefilters = on;
    }

    /// The policy set currently in use.
    pub fn policy_set(&self) -> &Arc<PolicySet> {
        &self.set
    }

    pub fn counters(&self) -> PolicyCounters {
        self.counters.snapshot()
    }

    /// Swaps in a reloaded set, if any; called between events only.
    fn follow_reloads(&mut self) {
        let Some(source) = &self.source else { return };
        if source.generation() != self.set.generation() {
            let set = source.current();
            self.install(set);
        }
    }

    /// Evaluates one event (the event type is read from `type`) and returns the
    /// alerts of every enabled rule subscribed to that type, minus those silenced
    /// by exceptions. Rule failures are reported in `errors`; they never panic.
    pub fn evaluate(&mut self, event: &serde_json::Value) -> Evaluation {
        self.follow_reloads();
        self.counters.evaluations.fetch_add(1, Relaxed);
        let mut out = Evaluation { generation: self.set.generation(), ..Evaluation::default() };
        let Some(event_type) = event.get("type").and_then(|t| t.as_str()) else {
            out.errors.push(RuleRuntimeError {
                rule: String::new(),
                kind: RuntimeErrorKind::Error,
                message: "event has no string `type` field".into(),
            });
            return out;
        };
        let set = self.set.clone();
        let group = set.group(event_type);
        if group.rules.is_empty() {
            return out;
        }

        // Rules whose static pre-filter proves they cannot alert on this event are
        // skipped; when none is left the VM (and the cache) is not consulted.
        let mut survivors = std::mem::take(&mut self.survivors);
        let mut alive = std::mem::take(&mut self.alive);
        survivors.clear();
        alive.clear();
        if self.use_prefilters {
            // Each filtered path is looked up once per event, on the stack when few.
            let mut stack = [None; FILTER_SLOTS_ON_STACK];
            let mut heap = Vec::new();
            let values: &mut [Option<&serde_json::Value>] = if set.filter_paths.len() <= FILTER_SLOTS_ON_STACK {
                &mut stack
            } else {
                heap.resize(set.filter_paths.len(), None);
                &mut heap
            };
            for &slot in &group.filter_slots {
                values[slot] = prefilter::resolve(event, &set.filter_paths[slot]);
            }
            alive.extend(group.filters.iter().map(|f| f.as_ref().is_none_or(|f| f.may_match_resolved(values))));
            survivors.extend(group.rules.iter().zip(&alive).filter(|(_, a)| **a).map(|(&r, _)| r));
        } else {
            survivors.extend_from_slice(&group.rules);
            alive.resize(group.rules.len(), true);
        }
        self.counters.rule_evaluations.fetch_add(group.rules.len() as u64, Relaxed);
        if survivors.is_empty() {
            self.survivors = survivors;
            self.alive = alive;
            return out;
        }

        let cacheable = self.cache.is_some() && group.plan.is_some();
        if let (Some(cache), Some(plan)) = (&mut self.cache, &group.plan) {
            // The rules that run decide the result; the paths only other rules read
            // do not matter (e.g. a pid read by one rule's message).
            self.key.clear();
            self.key.extend_from_slice(event_type.as_bytes());
            self.key.push(0);
            for chunk in alive.chunks(8) {
                self.key.push(chunk.iter().enumerate().fold(0u8, |b, (i, &a)| b | (u8::from(a) << i)));
            }
            write_key(plan, event, &alive, &mut self.key);
            if let Some(hit) = cache.get(self.key.as_slice()) {
                let hit = hit.clone();
                self.counters.cache_hits.fetch_add(1, Relaxed);
                out.cached = true;
                self.survivors = survivors;
                self.alive = alive;
                self.finish(&set, hit.iter().cloned(), event, &mut out);
                return out;
            }
            self.counters.cache_misses.fetch_add(1, Relaxed);
        }

        // A VM run costs a fixed setup (about as much as six rules that fail their
        // first test) plus the rules it runs: a few survivors run alone, each on its
        // own entry point; otherwise the whole group runs at once, sharing the setup
        // and the library rules evaluated in it. The skipped rules still run then:
        // their pre-filter proves they add no alert and raise no error (and their
        // results are not read).
        let alone = survivors.len() * RUN_ALONE_COST_RATIO <= group.rules.len() - survivors.len();
        let input = match &group.plan {
            // Running alone, the input needs only the paths the survivors read.
            Some(plan) => project(plan, event, if alone { &alive } else { &[] }),
            None => Value::deserialize(event).unwrap_or(Value::Undefined),
        };
        self.vm.set_input(input);
        let mut raw = Vec::new();
        let together = group.entry.filter(|_| !alone).and_then(|entry| {
            let value = self.vm.execute_entry_point_by_index(entry as usize).ok()?;
            let Value::Array(sets) = value else { return None };
            if sets.len() != group.rules.len() {
                return None;
            }
            group
                .rules
                .iter()
                .zip(sets.iter())
                .zip(&alive)
                .filter(|(_, a)| **a)
                .try_for_each(|((&rule, v), _)| collect_alerts(rule, v, &mut raw))
                .ok()
        });
        // Survivors alone, or the slow path (some rule failed, or no group entry):
        // rule by rule, so one failing rule is identified and the others still report.
        let mut failed = false;
        if together.is_none() {
            raw.clear();
            for &rule in &survivors {
                let result = self
                    .vm
                    .execute_entry_point_by_index(rule as usize)
                    .map_err(|e| {
                        let kind = match e {
                            VmError::InstructionLimitExceeded { .. } | VmError::TimeLimitExceeded { .. } => {
                                RuntimeErrorKind::Limit
                            }
                            _ => RuntimeErrorKind::Error,
                        };
                        (kind, e.to_string())
                    })
                    .and_then(|v| collect_alerts(rule, &v, &mut raw).map_err(|m| (RuntimeErrorKind::Error, m)));
                if let Err((kind, message)) = result {
                    failed = true;
                    let err = RuleRuntimeError { rule: set.rules()[rule as usize].id.clone(), kind, message };
                    self.record_error(rule as usize, &err);
                    out.errors.push(err);
                }
            }
        }
        self.alive = alive;
        self.survivors = survivors;
        // A failed evaluation may succeed next time (e.g. a time limit under load).
        if cacheable
            && !failed
            && let Some(cache) = &mut self.cache
        {
            cache.put(self.key.clone().into_boxed_slice(), raw.clone().into());
        }
        self.finish(&set, raw.into_iter(), event, &mut out);
        out
    }

    /// Development aid (benchmarks): runs every rule subscribed to each event's type
    /// on its own VM run, `rounds` times (keeping the fastest), and reports per rule
    /// the VM time per event and how many of the events pass its pre-filter.
    /// Counters are not touched.
    #[doc(hidden)]
    pub fn profile_rules(&mut self, events: &[serde_json::Value], rounds: usize) -> Vec<RuleCost> {
        let set = self.set.clone();
        let mut costs: Vec<RuleCost> =
            set.rules().iter().map(|r| RuleCost { rule: r.id.clone(), ..RuleCost::default() }).collect();
        for event in events {
            let Some(event_type) = event.get("type").and_then(|t| t.as_str()) else { continue };
            let group = set.group(event_type);
            if group.rules.is_empty() {
                continue;
            }
            let input = match &group.plan {
                Some(plan) => project(plan, event, &[]),
                None => Value::deserialize(event).unwrap_or(Value::Undefined),
            };
            self.vm.set_input(input);
            for (&rule, filter) in group.rules.iter().zip(&group.filters) {
                let cost = &mut costs[rule as usize];
                cost.events += 1;
                let passes = filter.as_ref().is_none_or(|f| {
                    let values: Vec<Option<&serde_json::Value>> =
                        set.filter_paths.iter().map(|p| prefilter::resolve(event, p)).collect();
                    f.may_match_resolved(&values)
                });
                cost.prefilter_passes += u64::from(passes);
                // The fastest of the rounds: robust against a loaded machine.
                let mut best = u64::MAX;
                for _ in 0..rounds.max(1) {
                    let start = Instant::now();
                    let _ = std::hint::black_box(self.vm.execute_entry_point_by_index(rule as usize));
                    best = best.min(start.elapsed().as_nanos() as u64);
                }
                cost.vm_nanos += best;
                cost.runs += 1;
            }
        }
        costs.retain(|c| c.runs > 0);
        costs
    }

    fn finish(
        &self,
        set: &PolicySet,
        raw: impl Iterator<Item = RawAlert>,
        event: &serde_json::Value,
        out: &mut Evaluation,
    ) {
        for a in raw {
            let idx = a.rule as usize;
            if set.is_excepted(idx, event) {
                out.suppressed += 1;
                continue;
            }
            let info = &set.rules()[idx];
            out.alerts.push(Alert {
                rule: info.id.clone(),
                severity: info.severity,
                title: info.title.clone(),
                message: a.message,
                mitre: info.mitre.clone(),
                event: event.clone(),
                extra: a.extra,
            });
        }
        self.counters.alerts.fetch_add(out.alerts.len() as u64, Relaxed);
        if out.suppressed > 0 {
            self.counters.suppressed.fetch_add(out.suppressed as u64, Relaxed);
        }
    }

    fn record_error(&mut self, rule: usize, err: &RuleRuntimeError) {
        self.counters.runtime_errors.fetch_add(1, Relaxed);
        if err.kind == RuntimeErrorKind::Limit {
            self.counters.limit_hits.fetch_add(1, Relaxed);
        }
        *self.counters.rule_errors.lock().unwrap_or_else(|p| p.into_inner()).entry(err.rule.clone()).or_default() += 1;
        let (last, skipped) = &mut self.error_log[rule];
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= ERROR_LOG_INTERVAL) {
            tracing::warn!(
                rule = %err.rule,
                kind = ?err.kind,
                error = %err.message,
                not_logged_since_last = *skipped,
                "policy rule failed at run time"
            );
            *last = Some(now);
            *skipped = 0;
        } else {
            *skipped += 1;
        }
    }
}

/// Turns a rule's `alert` value (a set of objects with a string `message`, or of
/// strings) into raw alerts.
fn collect_alerts(rule: u32, value: &Value, out: &mut Vec<RawAlert>) -> Result<(), String> {
    let mut one = |v: &Value| -> Result<(), String> {
        match v {
            Value::String(s) => {
                out.push(RawAlert { rule, message: s.to_string(), extra: serde_json::Map::new() });
                Ok(())
            }
            Value::Object(_) => {
                let json = serde_json::to_value(v).map_err(|e| e.to_string())?;
                let serde_json::Value::Object(mut map) = json else {
                    return Err("alert is not an object".into());
                };
                let Some(serde_json::Value::String(message)) = map.remove("message") else {
                    return Err("alert object has no string `message`".into());
                };
                map.retain(|k, _| !RESERVED_ALERT_KEYS.contains(&k.as_str()));
                out.push(RawAlert { rule, message, extra: map });
                Ok(())
            }
            other => Err(format!(
                "alert must be an object with a string `message`, got {}",
                other.to_json_str().unwrap_or_default().trim()
            )),
        }
    };
    match value {
        Value::Undefined => Ok(()),
        Value::Set(s) => s.iter().try_for_each(&mut one),
        Value::Array(a) => a.iter().try_for_each(&mut one),
        Value::Object(_) | Value::String(_) => one(value),
        other => {
            Err(format!("`alert` must be a set of objects, got {}", other.to_json_str().unwrap_or_default().trim()))
        }
    }
}

/// Writes an unambiguous encoding of the event restricted to `plan`'s paths read by
/// the rules flagged in `alive`: equal keys (with equal flags) mean the rules that
/// run see equal inputs, hence produce equal results.
fn write_key(plan: &PathTrie, v: &serde_json::Value, alive: &[bool], key: &mut Vec<u8>) {
    for (name, child) in &plan.children {
        if !child.needed(alive) {
            key.push(3);
            continue;
        }
        match v.get(name) {
            None => key.push(0),
            Some(sub) if child.whole || !sub.is_object() => {
                key.push(1);
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *key, sub);
            }
            Some(sub) => {
                key.push(2);
                write_key(child, sub, alive, key);
            }
        }
    }
    let _ = key.flush();
}

/// The event restricted to `plan`'s paths read by the rules flagged in `alive`, as
/// the rules' `input`.
fn project(plan: &PathTrie, v: &serde_json::Value, alive: &[bool]) -> Value {
    let mut obj = Value::new_object();
    if let Ok(map) = obj.as_object_mut() {
        for (name, child) in &plan.children {
            if !child.needed(alive) {
                continue;
            }
            let Some(sub) = v.get(name) else { continue };
            let value = if child.whole || !sub.is_object() {
                Value::deserialize(sub).unwrap_or(Value::Undefined)
            } else {
                project(child, sub, alive)
            };
            map.insert(Value::from(name.as_str()), value);
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn rule(id: &str, events: &str, body: &str) -> String {
        format!(
            "package sensor.rules.{id}\nimport rego.v1\nmetadata := {{\"title\": \"{id}\", \"severity\": \"low\", \"events\": {events}}}\nalert contains {{\"message\": msg}} if {{\n{body}\n}}\n"
        )
    }

    /// Pre-filtered and unfiltered evaluation agree on every event of a varied mix,
    /// including missing, null and wrongly typed fields.
    #[test]
    fn prefilters_never_change_results() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("eq.rego", rule("eq", "[\"open\"]", "  input.type == \"open\"\n  input.file.path == \"/etc/sudoers\"\n  msg := sprintf(\"%v\", [input.process.exe])")),
            ("set.rego", rule("set", "[\"open\", \"exec\"]", "  input.process.comm in {\"nc\", \"ncat\"}\n  msg := input.process.comm")),
            ("sw.rego", rule("sw", "[\"open\", \"unlink\"]", "  startswith(input.file.path, \"/var/log/\")\n  msg := sprintf(\"%v\", [input.file.path])")),
            ("ew.rego", rule("ew", "[\"dns\"]", "  endswith(input.dns.query, \".onion\"); contains(input.dns.query, \"x\")\n  msg := input.dns.query")),
            ("num.rego", rule("num", "[\"connect\"]", "  4444 == input.net.dport\n  msg := \"port\"")),
            ("flt.rego", rule("flt", "[\"connect\"]", "  input.net.ratio == 1.5\n  msg := \"ratio\"")),
            ("has.rego", rule("has", "[\"exec\"]", "  \"/usr/sbin/nginx\" in input.process.lineage\n  msg := \"lineage\"")),
            ("bool.rego", rule("bool", "[\"*\"]", "  input.flag == true\n  msg := \"flag\"")),
            (
                "two.rego",
                "package sensor.rules.two\nimport rego.v1\nmetadata := {\"title\": \"two\", \"severity\": \"low\", \"events\": [\"exec\"]}\nalert contains \"a\" if {\n  input.process.exe == \"/bin/a\"\n}\nalert contains \"b\" if {\n  input.process.uid == 0\n}\n".to_string(),
            ),
        ];
        for (name, text) in &files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let default_rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/default");
        let cfg = PolicyConfig {
            default_rules: false,
            rules_dirs: vec![default_rules, dir.path().to_path_buf()],
            cache_size: 0,
            watch: false,
            ..PolicyConfig::default()
        };
        let set = Arc::new(PolicySet::load(&cfg, &[]).unwrap_or_else(|e| panic!("{e}")));
        // Every rule here has a filter: the defaults start with `input.type == ...` and
        // a path, flag or field test the engine can check before the VM.
        let open = set.group("open");
        assert_eq!(open.rules.len(), 4 + 19, "4 rules above and the 19 default open rules");
        assert!(open.filters.iter().all(Option::is_some), "{:?}", open.filters);
        let mut with = PolicyEngine::new(set.clone());
        let mut without = PolicyEngine::new(set);
        without.set_prefilters(false);

        let strings = [
            json!(null),
            json!(7),
            json!("/etc/sudoers"),
            json!("/etc/shadow"),
            json!("/var/log/x"),
            json!("/var/logx"),
        ];
        let exes = [json!("/bin/a"), json!("/bin/bash"), json!("/tmp/x"), json!(1), json!(null)];
        let comms = [json!("nc"), json!("ncat "), json!(["nc"])];
        let lineages = [
            json!(["/usr/sbin/nginx"]),
            json!(["/usr/sbin/sshd"]),
            json!("/usr/sbin/nginx"),
            json!({"a": "/usr/sbin/nginx"}),
        ];
        let ports = [json!(4444), json!(4444.0), json!("4444"), json!(4445), json!(-1)];
        let ratios = [json!(1.5), json!(1), json!("1.5")];
        let queries = [json!("ax.onion"), json!("a.onion"), json!("x.com"), json!(5)];
        let mut events = Vec::new();
        for t in ["open", "exec", "connect", "unlink", "dns", "fork"] {
            for (i, path) in strings.iter().enumerate() {
                for (j, exe) in exes.iter().enumerate() {
                    let mut e = json!({"type": t, "process": {"exe": exe, "comm": comms[(i + j) % 3],
                        "uid": (i + j) % 2, "lineage": lineages[(i * 3 + j) % 4], "container_id": "c1", "args": ["a"]},
                        "file": {"path": path, "flags": ["O_WRONLY"]},
                        "net": {"dport": ports[(i + j) % 5], "ratio": ratios[(i + 2 * j) % 3], "daddr": "10.0.0.1", "direction": "outbound"},
                        "dns": {"query": queries[(i + j) % 4]}, "flag": (i + j) % 3 == 0});
                    // Some events lack whole subtrees or fields.
                    match (i + j) % 4 {
                        0 => drop(e.as_object_mut().unwrap().remove("file")),
                        1 => drop(e["process"].as_object_mut().unwrap().remove("lineage")),
                        _ => {}
                    }
                    events.push(e);
                }
            }
        }
        let mut alerts = 0;
        for e in &events {
            let (a, b) = (with.evaluate(e), without.evaluate(e));
            assert_eq!(a, b, "event {e}");
            alerts += a.alerts.len();
        }
        assert!(alerts > 20, "the mix must raise alerts: {alerts}");
    }
}
