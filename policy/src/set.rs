//! Building a validated, compiled policy set from sources and operator overrides.

use crate::config::{Exception, PolicyConfig, RuleOverride, merge_overrides};
use crate::error::{ErrorKind, PolicyError, PolicyErrors};
use crate::model::{EVENT_TYPES, Severity};
use crate::prefilter::{self, Prefilter};
use crate::scan::{self, InputUse, Token};
use crate::sources::{self, FileKind, SourceFile};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::{Engine, Value};
use serde::Deserialize;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Rule packages live under this prefix; other packages are helper libraries.
pub const RULES_PACKAGE_PREFIX: &str = "data.sensor.rules.";

const METADATA_KEYS: &[&str] = &["id", "title", "description", "severity", "events", "mitre", "tags", "references"];

/// What `sensor policy list` shows about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: String,
    /// Rego package, e.g. `data.sensor.rules.read_shadow`.
    pub package: String,
    pub file: String,
    pub title: String,
    pub description: Option<String>,
    /// Effective severity (after overrides).
    pub severity: Severity,
    /// Severity written in the rule.
    pub rule_severity: Severity,
    pub events: Vec<String>,
    pub mitre: Vec<String>,
    pub enabled: bool,
    /// Number of operator exceptions attached (including `"*"` ones).
    pub exceptions: usize,
}

/// Runtime knobs copied from [`PolicyConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub cache_size: usize,
    pub max_instructions: usize,
    pub timeout: Option<Duration>,
}

/// The set of rules an event of one type meets, plus how to key the cache for it.
#[derive(Debug)]
pub(crate) struct Group {
    pub rules: Vec<u32>,
    /// Entry point evaluating all `rules` in one VM run (an array of their alert
    /// sets, in order): one VM reset per event instead of one per rule.
    pub entry: Option<u32>,
    /// `None`: results for this type must not be cached (dynamic input use or a
    /// non-deterministic builtin) and the full event is given to the rules.
    pub plan: Option<PathTrie>,
    /// Per member rule, its pre-filter with the `input.type` conditions decided
    /// for this group's type (the wildcard group keeps them).
    pub filters: Vec<Option<Prefilter>>,
    /// Pre-filter slots (see [`PolicySet::filter_paths`]) the member rules read.
    pub filter_slots: Vec<usize>,
}

/// The input paths the rules of a group read, as a trie; the decision cache key and
/// the VM input are both built from these paths, the key (and the input of rules
/// run alone) restricted to the ones read by a rule that passes its pre-filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTrie {
    pub whole: bool,
    pub children: Vec<(String, PathTrie)>,
    /// Group positions of the rules reading this path or one below it; `None`:
    /// every rule (the event type, paths read by libraries).
    pub readers: Option<Vec<u32>>,
}

impl Default for PathTrie {
    fn default() -> Self {
        PathTrie { whole: false, children: Vec::new(), readers: Some(Vec::new()) }
    }
}

impl PathTrie {
    /// Whether some rule flagged in `alive` (by group position) reads this subtree.
    pub fn needed(&self, alive: &[bool]) -> bool {
        match &self.readers {
            None => true,
            Some(r) => r.iter().any(|&p| alive.get(p as usize).copied().unwrap_or(true)),
        }
    }

    fn insert(&mut self, path: &[String], reader: Option<u32>) {
        match (&mut self.readers, reader) {
            (None, _) => {}
            (r @ Some(_), None) => *r = None,
            (Some(r), Some(p)) => {
                if !r.contains(&p) {
                    r.push(p);
                }
            }
        }
        if self.whole {
            return;
        }
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            self.children.clear();
            return;
        };
        let idx = match self.children.binary_search_by(|(k, _)| k.as_str().cmp(first)) {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(i, (first.clone(), PathTrie::default()));
                i
            }
        };
        self.children[idx].1.insert(rest, reader);
    }
}

#[derive(Debug)]
pub(crate) struct CompiledException {
    exe: Option<GlobSet>,
    comm: Option<GlobSet>,
    container: Option<GlobSet>,
    path: Option<GlobSet>,
    uid: Vec<u32>,
}

impl CompiledException {
    fn matches(&self, event: &serde_json::Value) -> bool {
        let field = |ptr: &str| event.pointer(ptr).and_then(|v| v.as_str());
        let glob_ok = |set: &Option<GlobSet>, ptr: &str| match set {
            None => true,
            Some(set) => field(ptr).is_some_and(|s| set.is_match(s)),
        };
        glob_ok(&self.exe, "/process/exe")
            && glob_ok(&self.comm, "/process/comm")
            && glob_ok(&self.container, "/process/container_id")
            && glob_ok(&self.path, "/file/path")
            && (self.uid.is_empty()
                || event
                    .pointer("/process/uid")
                    .and_then(|v| v.as_u64())
                    .is_some_and(|u| self.uid.iter().any(|&x| u64::from(x) == u)))
    }
}

/// A validated, compiled rule set. Immutable; shared between evaluators via `Arc`.
#[derive(Debug)]
pub struct PolicySet {
    pub(crate) rules: Vec<RuleInfo>,
    /// Entry point `i` is `rules[i]`'s `alert`.
    pub(crate) program: Option<Arc<Program>>,
    pub(crate) data: Value,
    pub(crate) groups: HashMap<String, Group>,
    /// For event types no rule names (only `"*"` rules apply).
    pub(crate) wildcard: Group,
    pub(crate) exceptions: Vec<Vec<CompiledException>>,
    /// Slot -> input path read by the pre-filters.
    pub(crate) filter_paths: Vec<Vec<String>>,
    pub(crate) global_exceptions: Vec<CompiledException>,
    pub(crate) limits: Limits,
    pub(crate) generation: u64,
    files: Vec<String>,
    watched: Vec<PathBuf>,
    /// Taken before the sources were read, so a change made while loading is seen.
    pub(crate) fingerprint: sources::Fingerprint,
}

struct RuleModule<'a> {
    file: &'a SourceFile,
    package: String,
    tokens: Vec<Token>,
    /// The source given to the compiled program (see [`scan::inline_imports`]).
    compiled: String,
}

struct Meta {
    id: Option<String>,
    title: String,
    description: Option<String>,
    severity: Severity,
    events: Vec<String>,
    mitre: Vec<String>,
}

impl PolicySet {
    /// Loads, validates and compiles the rules selected by `config` (the embedded set
    /// when `config.default_rules`, plus `config.rules_dirs`), with overrides applied.
    pub fn load(config: &PolicyConfig, embedded: &[(&str, &str)]) -> Result<Self, PolicyErrors> {
        let embedded = if config.default_rules { embedded } else { &[] };
        let limits = Limits {
            cache_size: config.cache_size,
            max_instructions: match config.max_instructions {
                0 => usize::MAX,
                n => n,
            },
            timeout: (config.eval_timeout_us > 0).then(|| Duration::from_micros(config.eval_timeout_us)),
        };
        let mut watched = config.rules_dirs.clone();
        watched.extend(config.overrides_file.clone());
        let fingerprint = sources::fingerprint(&watched);
        let mut errors = Vec::new();
        let files = sources::collect(embedded, &config.rules_dirs, &mut errors);
        let overrides = load_overrides(config, &mut errors);
        let mut set = build(&files, &overrides, config_source(config), limits, watched, errors)?;
        set.fingerprint = fingerprint;
        Ok(set)
    }

    /// Loads and validates without overrides or limits, for `policy check`; also
    /// parses `*_test.rego` files.
    pub fn check(embedded: &[(&str, &str)], dirs: &[PathBuf]) -> Result<Self, PolicyErrors> {
        let mut errors = Vec::new();
        let files = sources::collect(embedded, dirs, &mut errors);
        for f in files.iter().filter(|f| f.kind == FileKind::RegoTest) {
            if let Err(e) = Engine::new().add_policy(f.name.clone(), f.content.clone()) {
                errors.push(PolicyError::from_regorus(&f.name, ErrorKind::Syntax, &e));
            }
        }
        let limits = Limits { cache_size: 0, max_instructions: usize::MAX, timeout: None };
        build(&files, &BTreeMap::new(), "", limits, dirs.to_vec(), errors)
    }

    /// Every rule, sorted by id, enabled or not.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn rule(&self, id: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Ids of the enabled rules an event of `event_type` is evaluated against.
    pub fn rules_for(&self, event_type: &str) -> Vec<&str> {
        self.group(event_type).rules.iter().map(|&i| self.rules[i as usize].id.as_str()).collect()
    }

    /// Names of the rule, library and data files loaded (tests excluded).
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Directories and files whose changes should trigger a reload.
    pub fn watched_paths(&self) -> &[PathBuf] {
        &self.watched
    }

    /// Increments on every successful reload (0 for a set loaded directly).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn group(&self, event_type: &str) -> &Group {
        self.groups.get(event_type).unwrap_or(&self.wildcard)
    }

    pub(crate) fn is_excepted(&self, rule: usize, event: &serde_json::Value) -> bool {
        self.exceptions[rule].iter().any(|e| e.matches(event))
            || self.global_exceptions.iter().any(|e| e.matches(event))
    }
}

fn config_source(config: &PolicyConfig) -> &str {
    if config.overrides.is_empty() {
        config.overrides_file.as_deref().and_then(Path::to_str).unwrap_or("[policy.overrides]")
    } else {
        "[policy.overrides]"
    }
}

fn load_overrides(config: &PolicyConfig, errors: &mut Vec<PolicyError>) -> BTreeMap<String, RuleOverride> {
    let mut base = BTreeMap::new();
    if let Some(path) = &config.overrides_file {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(PolicyError::new(&name, (0, 0), ErrorKind::Io, e.to_string())),
            Ok(text) => match parse_overrides(&name, &text) {
                Ok(o) => base = o,
                Err(e) => errors.push(e),
            },
        }
    }
    merge_overrides(base, &config.overrides)
}

type Overrides = BTreeMap<String, RuleOverride>;

fn parse_overrides(name: &str, text: &str) -> Result<Overrides, PolicyError> {
    let err = |pos, msg: String| PolicyError::new(name, pos, ErrorKind::Override, msg);
    if name.ends_with(".toml") {
        toml::from_str(text).map_err(|e| {
            let pos = e.span().map_or((0, 0), |s| line_col(text, s.start));
            err(pos, e.message().to_string())
        })
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        let v = Value::from_yaml_str(text).map_err(|e| err(yaml_pos(&e), format!("{e:#}")))?;
        let json = serde_json::to_value(&v).map_err(|e| err((0, 0), e.to_string()))?;
        Overrides::deserialize(json).map_err(|e| err((0, 0), e.to_string()))
    } else {
        serde_json::from_str(text).map_err(|e| err((e.line() as u32, e.column() as u32), e.to_string()))
    }
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, col)
}

/// YAML errors render as "... at line L column C".
fn yaml_pos(e: &anyhow::Error) -> (u32, u32) {
    let text = format!("{e:#}");
    let num_after = |key: &str| -> Option<u32> {
        let i = text.find(key)? + key.len();
        let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    match (num_after("line "), num_after("column ")) {
        (Some(l), Some(c)) => (l, c),
        _ => (0, 0),
    }
}

fn parse_data(f: &SourceFile) -> Result<Value, PolicyError> {
    let err = |pos, msg: String| PolicyError::new(&f.name, pos, ErrorKind::Data, msg);
    let value = if f.kind == FileKind::Json {
        let json: serde_json::Value =
            serde_json::from_str(&f.content).map_err(|e| err((e.line() as u32, e.column() as u32), e.to_string()))?;
        Value::deserialize(&json).map_err(|e| err((0, 0), e.to_string()))?
    } else {
        Value::from_yaml_str(&f.content).map_err(|e| err(yaml_pos(&e), format!("{e:#}")))?
    };
    if value.as_object().is_err() {
        return Err(err((1, 1), "a data document must be an object; it is merged at the root of `data`".into()));
    }
    Ok(value)
}

fn build(
    files: &[SourceFile],
    overrides: &Overrides,
    overrides_source: &str,
    limits: Limits,
    watched: Vec<PathBuf>,
    mut errors: Vec<PolicyError>,
) -> Result<PolicySet, PolicyErrors> {
    // Libraries first: every rule may call into them.
    let mut base = Engine::new();
    base.set_strict_builtin_errors(true);
    let mut library_uses = Vec::new();
    let mut library_compiled = Vec::new();
    let mut rule_modules = Vec::new();
    // Some module adds to an `alert` from outside its package: no pre-filters.
    let mut ref_head_alert = false;
    for f in files.iter().filter(|f| f.kind == FileKind::Rego) {
        let package = match Engine::new().add_policy(f.name.clone(), f.content.clone()) {
            Ok(p) => p,
            Err(e) => {
                errors.push(PolicyError::from_regorus(&f.name, ErrorKind::Syntax, &e));
                continue;
            }
        };
        let tokens = scan::tokenize(&f.content);
        ref_head_alert |= prefilter::has_ref_head_alert(&tokens);
        let compiled = scan::inline_imports(&f.content, &tokens);
        if package.starts_with(RULES_PACKAGE_PREFIX) {
            rule_modules.push(RuleModule { file: f, package, tokens, compiled });
        } else {
            library_uses.push(scan::input_use(&tokens));
            library_compiled.push((f, compiled));
            if let Err(e) = base.add_policy(f.name.clone(), f.content.clone()) {
                errors.push(PolicyError::from_regorus(&f.name, ErrorKind::Syntax, &e));
            }
        }
    }

    let mut data = Engine::new();
    for f in files.iter().filter(|f| matches!(f.kind, FileKind::Json | FileKind::Yaml)) {
        match parse_data(f) {
            Ok(v) => {
                if let Err(e) = data.add_data(v) {
                    errors.push(PolicyError::new(
                        &f.name,
                        (1, 1),
                        ErrorKind::Data,
                        format!("conflicts with an earlier data document: {e:#}"),
                    ));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let data = data.get_data();

    // Each rule is checked on its own (with the libraries) so every broken rule is
    // reported, not just the first one the full compile meets.
    let mut rules: Vec<(RuleInfo, &RuleModule, InputUse)> = Vec::new();
    for m in &rule_modules {
        let default_id = m.package.rsplit('.').next().unwrap_or_default().to_string();
        match check_rule(&base, m, &default_id) {
            Ok(meta) => {
                let id = meta.id.clone().unwrap_or(default_id);
                let info = RuleInfo {
                    id,
                    package: m.package.clone(),
                    file: m.file.name.clone(),
                    title: meta.title,
                    description: meta.description,
                    severity: meta.severity,
                    rule_severity: meta.severity,
                    events: meta.events,
                    mitre: meta.mitre,
                    enabled: true,
                    exceptions: 0,
                };
                rules.push((info, m, scan::input_use(&m.tokens)));
            }
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    rules.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for w in rules.windows(2) {
        if w[0].0.id == w[1].0.id {
            let pos = package_pos(&w[1].1.tokens);
            errors.push(
                PolicyError::new(
                    &w[1].1.file.name,
                    pos,
                    ErrorKind::DuplicateRule,
                    format!("rule id `{}` is also defined in {}", w[1].0.id, w[0].0.file),
                )
                .with_rule(Some(&w[1].0.id)),
            );
        }
    }

    let (exceptions, global_exceptions) = apply_overrides(&mut rules, overrides, overrides_source, &mut errors);

    let (mut groups, mut wildcard) = build_groups(&rules, &library_uses);

    // The whole set together: catches conflicts between files and compiles the program.
    let mut program = None;
    if errors.is_empty() && !rules.is_empty() {
        // The program is compiled from the sources with import aliases inlined (the
        // original text when that would not parse, which cannot be expected).
        let mut engine = Engine::new();
        engine.set_strict_builtin_errors(true);
        let modules = library_compiled
            .iter()
            .map(|(f, text)| (*f, text))
            .chain(rules.iter().map(|(_, m, _)| (m.file, &m.compiled)));
        for (f, text) in modules {
            if engine.add_policy(f.name.clone(), text.clone()).is_err()
                && let Err(e) = engine.add_policy(f.name.clone(), f.content.clone())
            {
                errors.push(PolicyError::from_regorus(&f.name, ErrorKind::Syntax, &e));
            }
        }
        let mut entries: Vec<String> = rules.iter().map(|(r, _, _)| format!("{}.alert", r.package)).collect();
        let dispatch = dispatch_module(&rules, &mut groups, &mut wildcard, &mut entries);
        if let Err(e) = engine.add_policy(DISPATCH_FILE.into(), dispatch) {
            errors.push(PolicyError::from_regorus(DISPATCH_FILE, ErrorKind::Compile, &e));
        }
        let entry_refs: Vec<&str> = entries.iter().map(String::as_str).collect();
        match engine
            .compile_with_entrypoint(&entries[0].as_str().into())
            .and_then(|cp| Compiler::compile_from_policy(&cp, &entry_refs).map_err(Into::into))
        {
            Ok(p) => {
                let mut vm = regorus::rvm::vm::RegoVM::new();
                vm.load_program(p.clone());
                if let Err(e) = vm.set_data(data.clone()) {
                    errors.push(PolicyError::new(
                        "data",
                        (0, 0),
                        ErrorKind::Data,
                        format!("data documents conflict with rule packages: {e}"),
                    ));
                }
                program = Some(p);
            }
            Err(e) => errors.push(PolicyError::from_regorus("<policy set>", ErrorKind::Compile, &e)),
        }
    }

    if !errors.is_empty() {
        dedupe(&mut errors);
        return Err(PolicyErrors(errors));
    }

    let mut prefilters: Vec<Option<Prefilter>> =
        rules.iter().map(|(_, m, _)| prefilter::alert_prefilter(&m.tokens).filter(|_| !ref_head_alert)).collect();
    let filter_paths = prefilter::assign_slots(&mut prefilters);
    let typed = groups.iter_mut().map(|(t, g)| (Some(t.as_str()), g));
    for (event_type, group) in typed.chain(std::iter::once((None, &mut wildcard))) {
        group.filters = group
            .rules
            .iter()
            .map(|&r| {
                let f = prefilters[r as usize].as_ref()?;
                match event_type {
                    Some(t) => f.for_type(t),
                    None => Some(f.clone()),
                }
            })
            .collect();
        let mut slots: Vec<usize> =
            group.filters.iter().flatten().flat_map(|f| f.defs.iter().flatten().map(|c| c.slot)).collect();
        slots.sort_unstable();
        slots.dedup();
        group.filter_slots = slots;
    }
    Ok(PolicySet {
        filter_paths,
        rules: rules.into_iter().map(|(r, _, _)| r).collect(),
        program,
        data,
        groups,
        wildcard,
        exceptions,
        global_exceptions,
        limits,
        generation: 0,
        files: files.iter().filter(|f| f.kind != FileKind::RegoTest).map(|f| f.name.clone()).collect(),
        watched,
        fingerprint: Vec::new(),
    })
}

const DISPATCH_FILE: &str = "<generated dispatch>";
const DISPATCH_PACKAGE: &str = "sensor_internal_dispatch";

/// Generates one rule per distinct group of subscribed rules, evaluating all their
/// `alert` sets at once, and appends its entry points after the per-rule ones.
fn dispatch_module(
    rules: &[(RuleInfo, &RuleModule, InputUse)],
    groups: &mut HashMap<String, Group>,
    wildcard: &mut Group,
    entries: &mut Vec<String>,
) -> String {
    let mut module = format!("package {DISPATCH_PACKAGE}\nimport rego.v1\n");
    let mut seen: HashMap<Vec<u32>, u32> = HashMap::new();
    for group in groups.values_mut().chain(std::iter::once(wildcard)) {
        if group.rules.is_empty() {
            continue;
        }
        let entry = *seen.entry(group.rules.clone()).or_insert_with(|| {
            let k = entries.len() - rules.len();
            let sets: Vec<String> = group
                .rules
                .iter()
                .map(|&i| format!("data.{}.alert", rules[i as usize].0.package.trim_start_matches("data.")))
                .collect();
            // One set per line: regorus rejects source lines over 1024 columns, which a
            // group of ~20 rules exceeds on one line.
            module.push_str(&format!("g{k} := [\n  {}\n]\n", sets.join(",\n  ")));
            entries.push(format!("data.{DISPATCH_PACKAGE}.g{k}"));
            (entries.len() - 1) as u32
        });
        group.entry = Some(entry);
    }
    module
}

fn dedupe(errors: &mut Vec<PolicyError>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.file.clone(), e.line, e.col, e.message.clone())));
}

fn package_pos(tokens: &[Token]) -> (u32, u32) {
    tokens.first().map_or((1, 1), |t| (t.line, t.col))
}

fn check_rule(base: &Engine, m: &RuleModule, default_id: &str) -> Result<Meta, Vec<PolicyError>> {
    let name = &m.file.name;
    let defs = scan::top_level_rules(&m.tokens);
    let pos_of = |rule: &str| defs.iter().find(|d| d.0 == rule).map(|d| (d.1, d.2));
    let meta_pos = pos_of("metadata").unwrap_or_else(|| package_pos(&m.tokens));
    let rule_err = |pos, kind, msg: String| PolicyError::new(name, pos, kind, msg).with_rule(Some(default_id));
    let mut errors = Vec::new();
    if pos_of("alert").is_none() {
        errors.push(rule_err(
            package_pos(&m.tokens),
            ErrorKind::MissingAlert,
            "a rule must define `alert contains {\"message\": ...} if { ... }`".into(),
        ));
    }
    let mut engine = base.clone();
    if let Err(e) = engine.add_policy(name.clone(), m.file.content.clone()) {
        errors.push(PolicyError::from_regorus(name, ErrorKind::Syntax, &e).with_rule(Some(default_id)));
        return Err(errors);
    }
    if pos_of("metadata").is_none() {
        errors.push(rule_err(meta_pos, ErrorKind::Metadata, "no `metadata` object".into()));
        return Err(errors);
    }
    let meta = match engine.eval_rule(format!("{}.metadata", m.package)) {
        Ok(v) => v,
        Err(e) => {
            errors.push(PolicyError::from_regorus(name, ErrorKind::Compile, &e).with_rule(Some(default_id)));
            return Err(errors);
        }
    };
    // Compile errors in the alert rule (unsafe variables, unknown functions, ...).
    if errors.is_empty()
        && let Err(e) = engine.compile_with_entrypoint(&format!("{}.alert", m.package).as_str().into())
    {
        errors.push(PolicyError::from_regorus(name, ErrorKind::Compile, &e).with_rule(Some(default_id)));
    }
    match validate_metadata(&meta) {
        Ok(meta) if errors.is_empty() => Ok(meta),
        Ok(_) => Err(errors),
        Err(problems) => {
            let id = meta_id(&meta).unwrap_or(default_id.to_string());
            errors.extend(
                problems
                    .into_iter()
                    .map(|(kind, msg)| PolicyError::new(name, meta_pos, kind, msg).with_rule(Some(&id))),
            );
            Err(errors)
        }
    }
}

fn meta_id(meta: &Value) -> Option<String> {
    let json = serde_json::to_value(meta).ok()?;
    json.get("id")?.as_str().map(str::to_string)
}

fn validate_metadata(meta: &Value) -> Result<Meta, Vec<(ErrorKind, String)>> {
    let bad = |msg: &str| vec![(ErrorKind::Metadata, msg.to_string())];
    if *meta == Value::Undefined {
        return Err(bad("`metadata` is undefined; it must be a constant object"));
    }
    let json = serde_json::to_value(meta).map_err(|e| bad(&e.to_string()))?;
    let Some(obj) = json.as_object() else {
        return Err(bad("`metadata` must be an object"));
    };
    let mut problems = Vec::new();
    let mut push = |kind, msg: String| problems.push((kind, msg));
    for key in obj.keys() {
        if !METADATA_KEYS.contains(&key.as_str()) {
            push(ErrorKind::Metadata, format!("unknown metadata field `{key}` (known: {})", METADATA_KEYS.join(", ")));
        }
    }
    let string_list = |key: &str, push: &mut dyn FnMut(ErrorKind, String)| -> Vec<String> {
        match obj.get(key) {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| match i.as_str() {
                    Some(s) => Some(s.to_string()),
                    None => {
                        push(ErrorKind::Metadata, format!("`{key}` must contain only strings, found {i}"));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                push(ErrorKind::Metadata, format!("`{key}` must be an array of strings, found {other}"));
                Vec::new()
            }
        }
    };
    let title = match obj.get("title").and_then(|t| t.as_str()) {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => {
            push(ErrorKind::Metadata, "`title` must be a non-empty string".into());
            String::new()
        }
    };
    let severity = match obj.get("severity").and_then(|s| s.as_str()) {
        Some(s) => match s.parse::<Severity>() {
            Ok(s) => s,
            Err(e) => {
                push(ErrorKind::UnknownSeverity, e.to_string());
                Severity::Info
            }
        },
        None => {
            push(ErrorKind::Metadata, "`severity` is required (info, low, medium, high or critical)".into());
            Severity::Info
        }
    };
    let events = string_list("events", &mut push);
    if events.is_empty() {
        push(ErrorKind::Metadata, "`events` must list the event types the rule sees (or [\"*\"])".into());
    }
    for e in &events {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            push(
                ErrorKind::UnknownEventType,
                format!("`{e}` in `events` is not an event type (known: {}, or \"*\")", EVENT_TYPES.join(", ")),
            );
        }
    }
    let mitre = string_list("mitre", &mut push);
    for t in &mitre {
        if !is_mitre_id(t) {
            push(ErrorKind::Metadata, format!("`{t}` in `mitre` is not a MITRE ATT&CK id like T1003 or T1003.008"));
        }
    }
    let _ = string_list("tags", &mut push);
    let _ = string_list("references", &mut push);
    let id = match obj.get("id") {
        None => None,
        Some(serde_json::Value::String(s))
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            Some(s.clone())
        }
        Some(other) => {
            push(ErrorKind::Metadata, format!("`id` must be a string of [A-Za-z0-9_-], found {other}"));
            None
        }
    };
    let description = match obj.get("description") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => {
            push(ErrorKind::Metadata, format!("`description` must be a string, found {other}"));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Meta { id, title, description, severity, events, mitre })
}

fn is_mitre_id(t: &str) -> bool {
    let rest = t.strip_prefix("TA").or_else(|| t.strip_prefix('T'));
    let Some(rest) = rest else { return false };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.chars().all(|c| c.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.chars().all(|c| c.is_ascii_digit()))
}

fn compile_globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = GlobBuilder::new(p).literal_separator(true).build().map_err(|e| format!("bad glob {p:?}: {e}"))?;
        b.add(g);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

fn compile_exception(e: &Exception) -> Result<CompiledException, String> {
    if e.is_empty() {
        return Err("an exception needs at least one of exe, comm, container, path, uid (to silence a rule entirely set enabled = false)".into());
    }
    Ok(CompiledException {
        exe: compile_globs(&e.exe)?,
        comm: compile_globs(&e.comm)?,
        container: compile_globs(&e.container)?,
        path: compile_globs(&e.path)?,
        uid: e.uid.clone(),
    })
}

fn apply_overrides(
    rules: &mut [(RuleInfo, &RuleModule, InputUse)],
    overrides: &Overrides,
    source: &str,
    errors: &mut Vec<PolicyError>,
) -> (Vec<Vec<CompiledException>>, Vec<CompiledException>) {
    let err =
        |rule: &str, msg: String| PolicyError::new(source, (0, 0), ErrorKind::Override, msg).with_rule(Some(rule));
    let compile_all = |rule: &str, o: &RuleOverride, errors: &mut Vec<PolicyError>| {
        o.exceptions
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match compile_exception(e) {
                Ok(c) => Some(c),
                Err(msg) => {
                    errors.push(err(rule, format!("exception #{}: {msg}", i + 1)));
                    None
                }
            })
            .collect::<Vec<_>>()
    };
    let mut global = Vec::new();
    for (id, o) in overrides {
        if id == "*" {
            if o.enabled.is_some() || o.severity.is_some() {
                errors.push(err(id, "the \"*\" override takes only exceptions".into()));
            }
            global = compile_all(id, o, errors);
        } else if !rules.iter().any(|(r, _, _)| &r.id == id) {
            errors.push(err(id, format!("override for unknown rule `{id}`")));
        }
    }
    let mut per_rule = Vec::with_capacity(rules.len());
    for (info, _, _) in rules.iter_mut() {
        let compiled = match overrides.get(&info.id) {
            Some(o) => {
                info.enabled = o.enabled.unwrap_or(true);
                info.severity = o.severity.unwrap_or(info.rule_severity);
                compile_all(&info.id, o, errors)
            }
            None => Vec::new(),
        };
        info.exceptions = compiled.len() + global.len();
        per_rule.push(compiled);
    }
    (per_rule, global)
}

fn build_groups(
    rules: &[(RuleInfo, &RuleModule, InputUse)],
    library_uses: &[InputUse],
) -> (HashMap<String, Group>, Group) {
    let refers_rules = rules.iter().any(|(_, _, u)| u.refers_rules);
    let group_for = |accept: &dyn Fn(&RuleInfo) -> bool| {
        let members: Vec<u32> = (0..rules.len() as u32)
            .filter(|&i| {
                let r = &rules[i as usize].0;
                r.enabled && accept(r)
            })
            .collect();
        // A rule may call helpers in any library (and, if some rule refers to another
        // rule package, into any rule file): all of them count towards what is read.
        let mut uses: Vec<&InputUse> = library_uses.iter().collect();
        if refers_rules {
            uses.extend(rules.iter().map(|(_, _, u)| u));
        } else {
            uses.extend(members.iter().map(|&i| &rules[i as usize].2));
        }
        let plan = if uses.iter().any(|u| u.dynamic || u.nondeterministic) {
            None
        } else {
            // Who reads what: a path only goes into the input and the cache key when
            // a rule reading it runs for the event (libraries: every rule may call
            // them; a rule referring to rules: anything may be read by anyone).
            let mut trie = PathTrie::default();
            trie.insert(&["type".to_string()], None);
            let shared = library_uses.iter().chain(if refers_rules { rules } else { &[] }.iter().map(|(_, _, u)| u));
            for u in shared {
                for p in &u.paths {
                    trie.insert(p, None);
                }
            }
            for (pos, &i) in members.iter().enumerate() {
                for p in &rules[i as usize].2.paths {
                    trie.insert(p, Some(pos as u32));
                }
            }
            Some(trie)
        };
        Group { rules: members, entry: None, plan, filters: Vec::new(), filter_slots: Vec::new() }
    };
    let mut groups = HashMap::new();
    for t in EVENT_TYPES {
        groups.insert(t.to_string(), group_for(&|r: &RuleInfo| r.events.iter().any(|e| e == t || e == "*")));
    }
    let wildcard = group_for(&|r: &RuleInfo| r.events.iter().any(|e| e == "*"));
    (groups, wildcard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_keeps_shortest_prefix() {
        let mut t = PathTrie::default();
        t.insert(&["process".into(), "exe".into()], Some(0));
        t.insert(&["process".into()], Some(1));
        t.insert(&["process".into(), "args".into()], Some(2));
        t.insert(&["file".into(), "path".into()], Some(1));
        assert_eq!(t.children.len(), 2);
        assert_eq!(t.children[0].0, "file");
        assert!(t.children[1].1.whole && t.children[1].1.children.is_empty());
        assert_eq!(t.children[1].1.readers, Some(vec![0, 1, 2]));
        assert!(!t.children[0].1.needed(&[true, false, true]) && t.children[0].1.needed(&[false, true, false]));
        t.insert(&["file".into(), "mode".into()], None);
        assert!(t.children[0].1.needed(&[false, false, false]));
    }

    #[test]
    fn mitre_ids() {
        assert!(is_mitre_id("T1003") && is_mitre_id("T1003.008") && is_mitre_id("TA0006"));
        assert!(!is_mitre_id("T103") && !is_mitre_id("1003") && !is_mitre_id("T1003.8"));
    }
}
