//! Hot reload: compile a new set aside, swap it in atomically, keep the old one on error.

use crate::config::PolicyConfig;
use crate::engine::{CounterCells, PolicyEngine};
use crate::error::PolicyErrors;
use crate::model::PolicyCounters;
use crate::set::PolicySet;
use crate::sources;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// State shared by the handle and every engine it hands out.
#[derive(Debug)]
pub(crate) struct Shared {
    config: PolicyConfig,
    embedded: Vec<(String, String)>,
    current: RwLock<Arc<PolicySet>>,
    /// Published after `current` is replaced; engines compare it between events.
    generation: AtomicU64,
    counters: Arc<CounterCells>,
    /// Serialises reloads (SIGHUP and the watcher may race).
    reload_lock: Mutex<()>,
}

impl Shared {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn current(&self) -> Arc<PolicySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a successful reload installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub generation: u64,
    pub rules: usize,
    pub enabled: usize,
}

/// A cloneable (`Send + Sync`) handle on a policy set that can be reloaded.
///
/// Pipeline threads call [`ReloadableEngine::engine`] once and evaluate with the
/// returned [`PolicyEngine`]; [`ReloadableEngine::reload`] (on SIGHUP) or the
/// [`ReloadableEngine::watch`] thread (on file change) swap the set underneath.
#[derive(Debug, Clone)]
pub struct ReloadableEngine {
    shared: Arc<Shared>,
}

impl ReloadableEngine {
    pub fn new(config: PolicyConfig, embedded: &[(&str, &str)]) -> Result<Self, PolicyErrors> {
        let set = PolicySet::load(&config, embedded)?;
        Ok(ReloadableEngine {
            shared: Arc::new(Shared {
                config,
                embedded: embedded.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect(),
                current: RwLock::new(Arc::new(set)),
                generation: AtomicU64::new(0),
                counters: Arc::default(),
                reload_lock: Mutex::new(()),
            }),
        })
    }

    /// An evaluator that follows reloads; one per pipeline thread.
    pub fn engine(&self) -> PolicyEngine {
        PolicyEngine::with_parts(self.shared.current(), self.shared.counters.clone(), Some(self.shared.clone()))
    }

    /// The set currently installed.
    pub fn current(&self) -> Arc<PolicySet> {
        self.shared.current()
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.shared.config
    }

    /// Counters of every engine handed out, plus reload counts.
    pub fn counters(&self) -> PolicyCounters {
        self.shared.counters.snapshot()
    }

    /// Re-reads every source and swaps the new set in. On error the old set stays,
    /// the error is logged and returned (the caller emits `policy_reload_failed`,
    /// e.g. from [`PolicyErrors::reload_failed_event`]).
    pub fn reload(&self) -> Result<ReloadSummary, PolicyErrors> {
        let _serial = self.shared.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let embedded: Vec<(&str, &str)> = self.shared.embedded.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        match PolicySet::load(&self.shared.config, &embedded) {
            Ok(mut set) => {
                let generation = self.shared.generation() + 1;
                set.generation = generation;
                let summary = ReloadSummary {
                    generation,
                    rules: set.rules().len(),
                    enabled: set.rules().iter().filter(|r| r.enabled).count(),
                };
                *self.shared.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
                self.shared.generation.store(generation, Ordering::Release);
                self.shared.counters.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(generation, rules = summary.rules, "policy reloaded");
                Ok(summary)
            }
            Err(errors) => {
                self.shared.counters.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%errors, "policy reload failed; keeping the previous rule set");
                Err(errors)
            }
        }
    }

    /// Files and directories whose changes trigger a reload.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths = self.shared.config.rules_dirs.clone();
        paths.extend(self.shared.config.overrides_file.clone());
        paths
    }

    /// Polls the watched paths every `interval` (size and mtime of every file) and
    /// reloads when anything changed; `on_reload` receives each reload's result (use
    /// it to emit `policy_reload_failed`). Stops when the handle is dropped.
    pub fn watch<F>(&self, interval: Duration, on_reload: F) -> WatchHandle
    where
        F: Fn(Result<ReloadSummary, PolicyErrors>) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let this = self.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("policy-watch".into()).spawn(move || {
            let paths = this.watched_paths();
            // Compared with what the installed set was built from; a failed
            // reload is not retried until the files change again.
            let mut last = this.current().fingerprint.clone();
            while !flag.load(Ordering::Relaxed) {
                // Sleep in short steps so dropping the handle stops promptly.
                let mut slept = Duration::ZERO;
                while slept < interval && !flag.load(Ordering::Relaxed) {
                    let step = (interval - slept).min(Duration::from_millis(50));
                    std::thread::sleep(step);
                    slept += step;
                }
                let now = sources::fingerprint(&paths);
                if now != last {
                    last = now;
                    on_reload(this.reload());
                }
            }
        });
        match thread {
            Ok(t) => WatchHandle { stop, thread: Some(t) },
            Err(e) => {
                tracing::error!(error = %e, "cannot start the policy watcher thread");
                WatchHandle { stop, thread: None }
            }
        }
    }
}

/// Stops the watcher thread when dropped.
#[derive(Debug)]
pub struct WatchHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
