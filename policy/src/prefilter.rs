//! Cheap Rust pre-filters derived from a rule's source: an event that provably
//! cannot satisfy any body of a rule's `alert` is not given to the VM for it.
//!
//! Soundness argument. For every `alert contains ... if { ... }` definition we take
//! the longest *prefix* of body statements that each match one of a few exact
//! shapes over literal `input` paths and constants:
//!
//! * `input.a.b == LIT` (or `LIT == input.a.b`)
//! * `input.a.b in {LIT, ...}` / `input.a.b in [LIT, ...]`
//! * `LIT in input.a.b`
//! * `input.a.b[_] in {LIT, ...}` (some member of a collection is one of the literals)
//! * `startswith(input.a.b, "s")`, `endswith(...)`, `contains(...)`
//!
//! These bind no variables and cannot raise errors, so the VM evaluates them first
//! and in order; if one is false or undefined the body fails with no alert and no
//! error. A condition only reports "cannot match" when that is certain (e.g. a
//! non-string argument of `startswith` is left to the VM). A rule is skipped when
//! every one of its definitions has a failing condition; a rule with any definition
//! we cannot analyse (no braces body, `else`, `default`, `alert` as a complete
//! rule, ...) gets no filter at all.

use crate::scan::{Tok, Token, ident};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// `input.p == LIT`.
    Eq(Json),
    /// `input.p in {LIT, ...}`.
    OneOf(Vec<Json>),
    /// `LIT in input.p`.
    Has(Json),
    /// `input.p[_] in {LIT, ...}`.
    AnyOf(Vec<Json>),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    pub path: Vec<String>,
    /// Index of `path` in the set's table of filtered paths (see [`assign_slots`]).
    pub slot: usize,
    pub test: Test,
}

/// Per `alert` definition, the conditions its body requires.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prefilter {
    pub defs: Vec<Vec<Cond>>,
}

impl Prefilter {
    /// `false` only when no body of the rule can succeed on `event`.
    #[cfg(test)]
    pub(crate) fn may_match(&self, event: &Json) -> bool {
        self.defs.iter().any(|conds| conds.iter().all(|c| c.may_hold(resolve(event, &c.path))))
    }

    /// The filter as seen by events whose `type` is known to be `event_type`: the
    /// `input.type` conditions are decided now. `None`: no condition is left on
    /// some definition, so the rule must always run.
    pub(crate) fn for_type(&self, event_type: &str) -> Option<Prefilter> {
        let is_type = |c: &Cond| c.path.len() == 1 && c.path[0] == "type";
        let known = Some(Json::String(event_type.to_string()));
        let mut defs = Vec::new();
        for conds in &self.defs {
            if conds.iter().any(|c| is_type(c) && !c.may_hold(known.as_ref())) {
                continue; // this definition can never succeed on such events
            }
            let rest: Vec<Cond> = conds.iter().filter(|c| !is_type(c)).cloned().collect();
            if rest.is_empty() {
                return None;
            }
            defs.push(rest);
        }
        Some(Prefilter { defs })
    }

    /// As `may_match`, with `values[slot]` the event's value at each slot's path.
    pub(crate) fn may_match_resolved(&self, values: &[Option<&Json>]) -> bool {
        self.defs.iter().any(|conds| conds.iter().all(|c| c.may_hold(values[c.slot])))
    }
}

/// The value at `path` (`None`: undefined, as a Rego ref would be).
pub(crate) fn resolve<'a>(event: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(event, |v, seg| v.as_object()?.get(seg.as_str()))
}

/// Numbers the distinct paths the filters read; returns the table (slot -> path).
pub(crate) fn assign_slots(filters: &mut [Option<Prefilter>]) -> Vec<Vec<String>> {
    let mut table: Vec<Vec<String>> = Vec::new();
    for c in filters.iter_mut().flatten().flat_map(|f| f.defs.iter_mut().flatten()) {
        c.slot = match table.iter().position(|p| *p == c.path) {
            Some(i) => i,
            None => {
                table.push(c.path.clone());
                table.len() - 1
            }
        };
    }
    table
}

/// Integers up to 2^53 are exact in every numeric representation regorus uses.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// `false` only when `v == lit` is certainly false in Rego.
fn may_equal(v: &Json, lit: &Json) -> bool {
    match (v, lit) {
        (Json::Number(a), Json::Number(b)) => {
            if let (Some(a), Some(b)) = (as_int(a), as_int(b)) {
                return a == b || a.unsigned_abs() >= EXACT as u128 || b.unsigned_abs() >= EXACT as u128;
            }
            match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) if x.abs() < EXACT && y.abs() < EXACT => x == y,
                _ => true,
            }
        }
        (Json::Number(_), _) | (_, Json::Number(_)) => false,
        _ => v == lit,
    }
}

fn as_int(n: &serde_json::Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

impl Cond {
    fn may_hold(&self, v: Option<&Json>) -> bool {
        // Undefined: every supported shape is then undefined (the body fails).
        let Some(v) = v else { return false };
        let text = |f: &dyn Fn(&str) -> bool| match v {
            Json::String(s) => f(s),
            // Left to the VM (a type error, or whatever it makes of it).
            _ => true,
        };
        match &self.test {
            Test::Eq(lit) => may_equal(v, lit),
            Test::OneOf(lits) => lits.iter().any(|l| may_equal(v, l)),
            Test::Has(lit) => match v {
                Json::Array(items) => items.iter().any(|i| may_equal(i, lit)),
                Json::Object(map) => map.values().any(|i| may_equal(i, lit)),
                _ => true,
            },
            Test::AnyOf(lits) => {
                let one_of = |i: &Json| lits.iter().any(|l| may_equal(i, l));
                match v {
                    Json::Array(items) => items.iter().any(one_of),
                    Json::Object(map) => map.values().any(one_of),
                    // Not a collection: left to the VM.
                    _ => true,
                }
            }
            Test::StartsWith(s) => text(&|x| x.starts_with(s.as_str())),
            Test::EndsWith(s) => text(&|x| x.ends_with(s.as_str())),
            Test::Contains(s) => text(&|x| x.contains(s.as_str())),
        }
    }
}

/// The module may add to some package's `alert` through a ref head such as
/// `x.alert contains ...` (then no rule's own source tells the whole story).
pub(crate) fn has_ref_head_alert(tokens: &[Token]) -> bool {
    let mut line_head = None;
    tokens.iter().enumerate().any(|(i, t)| {
        if t.line_start {
            line_head = ident(t);
        }
        t.depth == 0
            && ident(t) == Some("alert")
            && i > 0
            && tokens[i - 1].tok == Tok::Punct('.')
            && !matches!(line_head, Some("package" | "import"))
    })
}

/// The pre-filter of a rule module, if every `alert` definition can be analysed and
/// at least one condition was found.
pub(crate) fn alert_prefilter(tokens: &[Token]) -> Option<Prefilter> {
    let mut defs = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.depth != 0 || ident(t) != Some("alert") {
            continue;
        }
        if i > 0 && tokens[i - 1].tok == Tok::Punct('.') {
            continue;
        }
        // Any other top-level use of `alert` (default, complete rule, alias, ...).
        if !t.line_start || tokens.get(i + 1).and_then(ident) != Some("contains") {
            return None;
        }
        let conds = definition_conds(tokens, i)?;
        defs.push(conds);
    }
    if defs.is_empty() || defs.iter().any(Vec::is_empty) {
        return None;
    }
    Some(Prefilter { defs })
}

/// Conditions required by the body of the `alert` definition starting at `start`.
fn definition_conds(tokens: &[Token], start: usize) -> Option<Vec<Cond>> {
    // The `if {` of this definition: the first depth-0 `if` after the head.
    let mut k = start + 2;
    while k < tokens.len() {
        let t = &tokens[k];
        if t.depth == 0 && (t.line_start || ident(t) == Some("alert")) {
            return None; // next definition reached without `if`
        }
        if t.depth == 0 && ident(t) == Some("if") {
            break;
        }
        k += 1;
    }
    let open = k + 1;
    if tokens.get(open).map(|t| (&t.tok, t.depth)) != Some((&Tok::Punct('{'), 0)) {
        return None;
    }
    let body_start = open + 1;
    let body_end = (body_start..tokens.len()).find(|&j| tokens[j].depth == 0)?;
    if tokens[body_end].tok != Tok::Punct('}') {
        return None;
    }
    // No `else` or second body after it.
    if let Some(next) = tokens.get(body_end + 1)
        && (!next.line_start || ident(next) == Some("else") || next.tok == Tok::Punct('{'))
    {
        return None;
    }

    let mut conds = Vec::new();
    let mut s = body_start;
    while s < body_end {
        let mut e = s + 1;
        while e < body_end && !(tokens[e].depth == 1 && (tokens[e].line_start || tokens[e - 1].tok == Tok::Punct(';')))
        {
            e += 1;
        }
        let mut stmt = &tokens[s..e];
        let mut separated = false;
        if let Some((last, rest)) = stmt.split_last()
            && last.tok == Tok::Punct(';')
        {
            stmt = rest;
            separated = true;
        }
        // The next line must not continue this expression (`== false`, `with ...`).
        if !separated && e < body_end && !starts_new_statement(&tokens[e], tokens.get(e + 1)) {
            break;
        }
        let Some(cond) = statement_cond(stmt) else { break };
        conds.push(cond);
        s = e;
    }
    Some(conds)
}

/// Whether a body line starting with `t` (followed by `next`) is a new statement.
fn starts_new_statement(t: &Token, next: Option<&Token>) -> bool {
    match &t.tok {
        // `contains(` is the builtin (the `contains` keyword only appears in rule
        // heads, never at the start of a body line).
        Tok::Ident(w) if w == "contains" => punct(next, '('),
        Tok::Ident(w) => !matches!(w.as_str(), "with" | "in" | "as" | "else" | "if" | "or" | "and"),
        Tok::Literal(l) => l.starts_with('"') || l.starts_with('`'),
        Tok::Punct(_) => false,
    }
}

/// `input.a.b` at the start of `toks`: the path and the number of tokens used.
fn input_ref(toks: &[Token]) -> Option<(Vec<String>, usize)> {
    if toks.first().and_then(ident) != Some("input") {
        return None;
    }
    let mut path = Vec::new();
    let mut k = 1;
    while toks.get(k).map(|t| &t.tok) == Some(&Tok::Punct('.')) {
        path.push(toks.get(k + 1).and_then(ident)?.to_string());
        k += 2;
    }
    (!path.is_empty()).then_some((path, k))
}

/// A scalar literal (string, raw string, number, true, false, null).
fn literal(t: &Token) -> Option<Json> {
    match &t.tok {
        Tok::Literal(text) if text.starts_with('"') => serde_json::from_str::<String>(text).ok().map(Json::String),
        Tok::Literal(text) if text.starts_with('`') => {
            let inner = text.strip_prefix('`')?.strip_suffix('`')?;
            Some(Json::String(inner.to_string()))
        }
        Tok::Literal(text) => match serde_json::from_str::<Json>(text).ok()? {
            n @ Json::Number(_) => Some(n),
            _ => None,
        },
        Tok::Ident(w) => match w.as_str() {
            "true" => Some(Json::Bool(true)),
            "false" => Some(Json::Bool(false)),
            "null" => Some(Json::Null),
            _ => None,
        },
        Tok::Punct(_) => None,
    }
}

fn punct(t: Option<&Token>, c: char) -> bool {
    t.map(|t| &t.tok) == Some(&Tok::Punct(c))
}

fn statement_cond(stmt: &[Token]) -> Option<Cond> {
    // startswith(input.p, "s") and friends.
    if let Some(f) = stmt.first().and_then(ident)
        && matches!(f, "startswith" | "endswith" | "contains")
    {
        if !punct(stmt.get(1), '(') {
            return None;
        }
        let (path, n) = input_ref(&stmt[2..])?;
        let rest = &stmt[2 + n..];
        if rest.len() != 3 || !punct(rest.first(), ',') || !punct(rest.get(2), ')') {
            return None;
        }
        let Json::String(s) = literal(&rest[1])? else { return None };
        let test = match f {
            "startswith" => Test::StartsWith(s),
            "endswith" => Test::EndsWith(s),
            _ => Test::Contains(s),
        };
        return Some(Cond { path, slot: 0, test });
    }
    // input.p == LIT, input.p in {LIT, ...}
    if let Some((path, n)) = input_ref(stmt) {
        let rest = &stmt[n..];
        if rest.len() == 3 && punct(rest.first(), '=') && punct(rest.get(1), '=') {
            return Some(Cond { path, slot: 0, test: Test::Eq(literal(&rest[2])?) });
        }
        if rest.first().and_then(ident) == Some("in") {
            return Some(Cond { path, slot: 0, test: Test::OneOf(collection(&rest[1..])?) });
        }
        // input.p[_] in {LIT, ...}
        if punct(rest.first(), '[')
            && rest.get(1).and_then(ident) == Some("_")
            && punct(rest.get(2), ']')
            && rest.get(3).and_then(ident) == Some("in")
        {
            return Some(Cond { path, slot: 0, test: Test::AnyOf(collection(&rest[4..])?) });
        }
        return None;
    }
    // LIT == input.p, LIT in input.p
    let lit = literal(stmt.first()?)?;
    if punct(stmt.get(1), '=') && punct(stmt.get(2), '=') {
        let (path, n) = input_ref(&stmt[3..])?;
        return (3 + n == stmt.len()).then_some(Cond { path, slot: 0, test: Test::Eq(lit) });
    }
    if stmt.get(1).and_then(ident) == Some("in") {
        let (path, n) = input_ref(&stmt[2..])?;
        return (2 + n == stmt.len()).then_some(Cond { path, slot: 0, test: Test::Has(lit) });
    }
    None
}

/// `{LIT, ...}` or `[LIT, ...]` spanning all of `toks`.
fn collection(toks: &[Token]) -> Option<Vec<Json>> {
    let close = match toks.first()?.tok {
        Tok::Punct('{') => '}',
        Tok::Punct('[') => ']',
        _ => return None,
    };
    let (last, inner) = toks[1..].split_last()?;
    if last.tok != Tok::Punct(close) {
        return None;
    }
    let mut out = Vec::new();
    let mut k = 0;
    while k < inner.len() {
        out.push(literal(&inner[k])?);
        match inner.get(k + 1) {
            None => break,
            Some(t) if t.tok == Tok::Punct(',') => k += 2,
            Some(_) => return None,
        }
    }
    // `{}` is an empty object, not a set: leave it to the VM.
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::tokenize;
    use serde_json::json;

    fn filter(body: &str) -> Option<Prefilter> {
        let src = format!(
            "package sensor.rules.x\nimport rego.v1\nmetadata := {{\"title\": \"t\"}}\nalert contains {{\"message\": msg}} if {{\n{body}\n}}\n"
        );
        alert_prefilter(&tokenize(&src))
    }

    fn conds(body: &str) -> Vec<Cond> {
        filter(body).map(|f| f.defs.concat()).unwrap_or_default()
    }

    #[test]
    fn recognises_required_conditions_in_order() {
        let c = conds(
            "  input.type == \"open\"\n  input.file.path in {\"/etc/shadow\", \"/etc/gshadow\"}\n  startswith(input.process.exe, `/tmp/`); input.net.dport == 4444\n  \"/x\" in input.process.lineage\n  not input.process.exe in data.l\n  input.file.path == \"/never\"",
        );
        let tests: Vec<_> = c.iter().map(|c| (c.path.join("."), c.test.clone())).collect();
        assert_eq!(
            tests,
            [
                ("type".to_string(), Test::Eq(json!("open"))),
                ("file.path".into(), Test::OneOf(vec![json!("/etc/shadow"), json!("/etc/gshadow")])),
                ("process.exe".into(), Test::StartsWith("/tmp/".into())),
                ("net.dport".into(), Test::Eq(json!(4444))),
                ("process.lineage".into(), Test::Has(json!("/x"))),
            ],
            "stops at the first statement it does not understand"
        );
    }

    #[test]
    fn a_line_may_start_with_contains() {
        let c = conds(
            "  input.type == \"open\"\n  contains(input.file.path, \".sock\")\n  input.file.flags[_] in {\"O_WRONLY\"}\n  msg := 1",
        );
        let tests: Vec<_> = c.iter().map(|c| (c.path.join("."), c.test.clone())).collect();
        assert_eq!(
            tests,
            [
                ("type".to_string(), Test::Eq(json!("open"))),
                ("file.path".into(), Test::Contains(".sock".into())),
                ("file.flags".into(), Test::AnyOf(vec![json!("O_WRONLY")])),
            ]
        );
        // Still a continuation when it is not the builtin's call.
        assert!(filter("  input.a == \"x\"\n  contains x\n  msg := 1").is_none_or(|f| f.defs[0].is_empty()));
    }

    #[test]
    fn rejects_what_it_cannot_prove() {
        // Continued on the next line: `startswith(...) == false`.
        assert!(filter("  startswith(input.a, \"x\")\n  == false\n  msg := 1").is_none());
        // `with` rewrites the statement.
        assert!(filter("  input.a == \"x\"\n    with input as {\"a\": \"x\"}\n  msg := 1").is_none());
        // Not a plain path / not a literal / negated.
        assert!(conds("  input.a[\"b\"] == \"x\"").is_empty());
        assert!(conds("  input.a == x").is_empty());
        assert!(conds("  not input.a == \"x\"").is_empty());
        assert!(conds("  input.a == \"x\" + 1").is_empty());
        assert!(conds("  input.a in {}").is_empty());
        // A later definition without a condition disables the filter.
        let src = "package p\nalert contains 1 if {\n  input.a == 1\n}\nalert contains 2 if {\n  true\n}\n";
        assert!(alert_prefilter(&tokenize(src)).is_none());
        let src = "package p\nalert contains 1 if input.a == 1\n";
        assert!(alert_prefilter(&tokenize(src)).is_none());
        let src = "package p\ndefault alert := set()\nalert contains 1 if {\n  input.a == 1\n}\n";
        assert!(alert_prefilter(&tokenize(src)).is_none());
    }

    #[test]
    fn spots_ref_head_alerts() {
        let lib = "package sensor.rules\nimport data.sensor.rules.x.alert\nx.alert contains \"m\" if {\n  true\n}\n";
        assert!(has_ref_head_alert(&tokenize(lib)));
        let ok = "package sensor.lib.p\nimport data.sensor.rules.x.alert\nn := count(data.sensor.rules.x.alert)\n";
        assert!(!has_ref_head_alert(&tokenize(ok)));
    }

    #[test]
    fn type_conditions_are_decided_per_group() {
        let f = filter("  input.type == \"open\"\n  input.file.path == \"/x\"\n  msg := 1").unwrap();
        let open = f.for_type("open").unwrap();
        assert_eq!(open.defs, [vec![f.defs[0][1].clone()]]);
        assert!(!f.for_type("exec").unwrap().may_match(&json!({"file": {"path": "/x"}})));
        assert!(filter("  input.type == \"open\"\n  msg := 1").unwrap().for_type("open").is_none());
    }

    #[test]
    fn decides_only_certain_mismatches() {
        let f = |body: &str| filter(body).unwrap();
        let eq = f("  input.n == 4444\n  msg := 1");
        assert!(eq.may_match(&json!({"n": 4444})) && eq.may_match(&json!({"n": 4444.0})));
        assert!(!eq.may_match(&json!({"n": 4445})) && !eq.may_match(&json!({"n": "4444"})));
        assert!(!eq.may_match(&json!({})) && !eq.may_match(&json!({"n": null})));
        let sw = f("  startswith(input.p.q, \"/var/log/\")\n  msg := 1");
        assert!(sw.may_match(&json!({"p": {"q": "/var/log/x"}})));
        assert!(!sw.may_match(&json!({"p": {"q": "/var/tmp/x"}})) && !sw.may_match(&json!({"p": {}})));
        assert!(sw.may_match(&json!({"p": {"q": 7}})), "a type error is the VM's call");
        assert!(!sw.may_match(&json!({"p": [{"q": "/var/log/x"}]})));
        let any = f("  input.f[_] in {\"O_WRONLY\", \"O_RDWR\"}\n  msg := 1");
        assert!(
            any.may_match(&json!({"f": ["O_RDONLY", "O_RDWR"]})) && any.may_match(&json!({"f": {"a": "O_WRONLY"}}))
        );
        assert!(!any.may_match(&json!({"f": ["O_RDONLY"]})) && !any.may_match(&json!({"f": []})));
        assert!(!any.may_match(&json!({})) && any.may_match(&json!({"f": "O_RDONLY"})), "a string is the VM's call");
        let has = f("  \"/usr/sbin/nginx\" in input.lineage\n  msg := 1");
        assert!(has.may_match(&json!({"lineage": ["/bin/sh", "/usr/sbin/nginx"]})));
        assert!(!has.may_match(&json!({"lineage": ["/bin/sh"]})) && has.may_match(&json!({"lineage": "s"})));
        // Two definitions: either may alert.
        let src = "package p\nalert contains 1 if {\n  input.a == 1\n}\nalert contains 2 if {\n  input.b == 2\n}\n";
        let two = alert_prefilter(&tokenize(src)).unwrap();
        assert!(two.may_match(&json!({"b": 2})) && !two.may_match(&json!({"a": 2, "b": 1})));
    }
}
