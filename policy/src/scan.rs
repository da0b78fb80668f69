//! A small Rego tokenizer used for static facts regorus does not expose publicly:
//! where top-level rules are defined (for error positions and test discovery),
//! which `input` paths a module reads (for the decision cache key) and whether it
//! calls non-deterministic builtins (which make caching unsound).

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    Punct(char),
    /// String, raw string or number literal, as written in the source.
    Literal(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
    /// Bracket nesting depth before this token.
    pub depth: u32,
    /// First token on its line.
    pub line_start: bool,
}

pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col, mut depth) = (0usize, 1u32, 1u32, 0u32);
    let mut line_start = true;
    while i < chars.len() {
        let c = chars[i];
        let (tline, tcol) = (line, col);
        let advance = |n: usize, i: &mut usize, col: &mut u32| {
            *i += n;
            *col += n as u32;
        };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
                line_start = true;
                continue;
            }
            c if c.is_whitespace() => {
                advance(1, &mut i, &mut col);
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '"' => {
                let start = i;
                advance(1, &mut i, &mut col);
                while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                    let n = if chars[i] == '\\' { 2 } else { 1 };
                    advance(n, &mut i, &mut col);
                }
                advance(1, &mut i, &mut col);
                let text = chars[start..i.min(chars.len())].iter().collect();
                push(&mut out, Tok::Literal(text), tline, tcol, depth, &mut line_start);
            }
            '`' => {
                let start = i;
                advance(1, &mut i, &mut col);
                while i < chars.len() && chars[i] != '`' {
                    if chars[i] == '\n' {
                        line += 1;
                        col = 1;
                        i += 1;
                    } else {
                        advance(1, &mut i, &mut col);
                    }
                }
                advance(1, &mut i, &mut col);
                let text = chars[start..i.min(chars.len())].iter().collect();
                push(&mut out, Tok::Literal(text), tline, tcol, depth, &mut line_start);
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    advance(1, &mut i, &mut col);
                }
                let text = chars[start..i].iter().collect();
                push(&mut out, Tok::Literal(text), tline, tcol, depth, &mut line_start);
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    advance(1, &mut i, &mut col);
                }
                let word: String = chars[start..i].iter().collect();
                push(&mut out, Tok::Ident(word), tline, tcol, depth, &mut line_start);
            }
            _ => {
                if matches!(c, ')' | ']' | '}') {
                    depth = depth.saturating_sub(1);
                }
                push(&mut out, Tok::Punct(c), tline, tcol, depth, &mut line_start);
                if matches!(c, '(' | '[' | '{') {
                    depth += 1;
                }
                advance(1, &mut i, &mut col);
            }
        }
    }
    out
}

fn push(out: &mut Vec<Token>, tok: Tok, line: u32, col: u32, depth: u32, line_start: &mut bool) {
    out.push(Token { tok, line, col, depth, line_start: *line_start });
    *line_start = false;
}

pub(crate) fn ident(t: &Token) -> Option<&str> {
    match &t.tok {
        Tok::Ident(s) => Some(s),
        _ => None,
    }
}

/// Names of top-level rules with the position of their first definition.
pub(crate) fn top_level_rules(tokens: &[Token]) -> Vec<(String, u32, u32)> {
    let mut out: Vec<(String, u32, u32)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.depth == 0 && t.line_start {
            let mut j = i;
            if ident(t) == Some("default") {
                j += 1;
            }
            if let Some(name) = tokens.get(j).and_then(ident) {
                let prev_dot = i > 0 && tokens[i - 1].tok == Tok::Punct('.');
                if !matches!(name, "package" | "import") && !prev_dot && !out.iter().any(|(n, _, _)| n == name) {
                    out.push((name.to_string(), tokens[j].line, tokens[j].col));
                }
            }
            if matches!(ident(t), Some("package" | "import")) {
                // Skip the dotted path so its segments are not taken for rules.
                i += 1;
                while i < tokens.len() && !tokens[i].line_start {
                    i += 1;
                }
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Static facts about the `input` document a module reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct InputUse {
    /// Dotted paths under `input` (each read as a whole subtree).
    pub paths: Vec<Vec<String>>,
    /// `input` is read as a whole or through a computed key, or `with` rewrites
    /// documents: the exact set of fields read is unknown.
    pub dynamic: bool,
    /// Calls a builtin whose result does not depend on the input alone.
    pub nondeterministic: bool,
    /// Refers to another rule package (`data.sensor.rules...`).
    pub refers_rules: bool,
}

const NONDETERMINISTIC: &[(&str, &str)] = &[
    ("time", "now_ns"),
    ("rand", "intn"),
    ("uuid", "rfc4122"),
    ("http", "send"),
    ("net", "lookup_ip_addr"),
    ("opa", "runtime"),
];

pub(crate) fn input_use(tokens: &[Token]) -> InputUse {
    let mut u = InputUse::default();
    let dot = |k: usize| tokens.get(k).map(|t| t.tok == Tok::Punct('.')) == Some(true);
    for i in 0..tokens.len() {
        let Some(name) = ident(&tokens[i]) else {
            continue;
        };
        let after_dot = i > 0 && tokens[i - 1].tok == Tok::Punct('.');
        if name == "with" {
            u.dynamic = true;
        }
        if after_dot {
            continue;
        }
        if name == "input" {
            let mut path = Vec::new();
            let mut k = i + 1;
            while dot(k) {
                match tokens.get(k + 1).and_then(ident) {
                    Some(seg) => path.push(seg.to_string()),
                    None => break,
                }
                k += 2;
            }
            if path.is_empty() {
                u.dynamic = true;
            } else {
                u.paths.push(path);
            }
            continue;
        }
        if dot(i + 1)
            && let Some(member) = tokens.get(i + 2).and_then(ident)
        {
            if NONDETERMINISTIC.contains(&(name, member)) {
                u.nondeterministic = true;
            }
            if name == "data" && member == "sensor" && dot(i + 3) && tokens.get(i + 4).and_then(ident) == Some("rules")
            {
                u.refers_rules = true;
            }
        }
    }
    u
}

/// Rewrites every `alias.member` reference of an `import data.a.b [as alias]` into
/// `data.a.b.member`, for the compiled program only (the source shown to users and
/// the interpreter used by `policy test` keep the original text).
///
/// Why: regorus 0.14's RVM compiler resolves `alias.member` by first loading the
/// whole imported package as a virtual document (it evaluates *every* rule of the
/// package, e.g. all of `sensor.lib.process` for one `process.in_container`) and
/// then indexing it, while `data.a.b.member` compiles to a call of that one rule.
/// Both denote the same document, so results are the same.
///
/// An alias is only rewritten when every use of it is such a `alias.member`
/// reference: a bare use (`some process in ...`, an argument named like the alias)
/// could be a local variable shadowing it, so that module keeps it as written.
pub(crate) fn inline_imports(src: &str, tokens: &[Token]) -> String {
    // alias -> imported path, and the token ranges of the import statements.
    let mut imports: Vec<(String, String)> = Vec::new();
    let mut import_lines: Vec<u32> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !(t.depth == 0 && t.line_start && ident(t) == Some("import")) {
            continue;
        }
        import_lines.push(t.line);
        let stmt: Vec<&Token> = tokens[i + 1..].iter().take_while(|t| !t.line_start).collect();
        if stmt.first().and_then(|t| ident(t)) != Some("data") {
            continue;
        }
        let mut path = vec!["data".to_string()];
        let mut k = 1;
        while stmt.get(k).is_some_and(|t| t.tok == Tok::Punct('.')) {
            match stmt.get(k + 1).and_then(|t| ident(t)) {
                Some(seg) => path.push(seg.to_string()),
                None => break,
            }
            k += 2;
        }
        let alias = match (stmt.get(k).and_then(|t| ident(t)), stmt.get(k + 1).and_then(|t| ident(t))) {
            (None, _) if k == stmt.len() => path.last().cloned(),
            (Some("as"), Some(a)) if k + 2 == stmt.len() => Some(a.to_string()),
            _ => None,
        };
        if let Some(alias) = alias.filter(|_| path.len() > 1) {
            imports.push((alias, path.join(".")));
        }
    }
    let mut edits: Vec<(u32, u32, usize, &str)> = Vec::new(); // line, col, chars, text
    for (alias, path) in &imports {
        let mut uses = Vec::new();
        let mut inlinable = true;
        for (i, t) in tokens.iter().enumerate() {
            if ident(t) != Some(alias.as_str()) || import_lines.contains(&t.line) {
                continue;
            }
            if i > 0 && tokens[i - 1].tok == Tok::Punct('.') {
                continue; // a field such as `input.process`
            }
            let member = tokens.get(i + 1).is_some_and(|n| n.tok == Tok::Punct('.'))
                && tokens.get(i + 2).and_then(ident).is_some();
            if !member {
                inlinable = false;
                break;
            }
            uses.push((t.line, t.col));
        }
        if inlinable {
            edits.extend(uses.into_iter().map(|(l, c)| (l, c, alias.chars().count(), path.as_str())));
        }
    }
    if edits.is_empty() {
        return src.to_string();
    }
    // Right to left within a line, so earlier columns stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    let mut lines: Vec<String> = src.split('\n').map(str::to_string).collect();
    for (line, col, len, text) in edits {
        let Some(l) = lines.get_mut(line as usize - 1) else { continue };
        let start = l.char_indices().nth(col as usize - 1).map(|(b, _)| b);
        let end = l.char_indices().nth(col as usize - 1 + len).map_or(l.len(), |(b, _)| b);
        if let Some(start) = start {
            l.replace_range(start..end, text);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rules_and_input_paths() {
        let src = r#"package sensor.rules.x
import rego.v1
# input.commented.out is ignored
metadata := {"title": "input.not.a.ref"}
default allow := false
alert contains {"message": msg} if {
  input.type == "open"
  some a in input.process.args
  msg := sprintf("%s", [input.file.path])
}
test_one if { true }
"#;
        let toks = tokenize(src);
        let rules: Vec<_> = top_level_rules(&toks).into_iter().map(|r| r.0).collect();
        assert_eq!(rules, ["metadata", "allow", "alert", "test_one"]);
        let u = input_use(&toks);
        assert_eq!(
            u.paths,
            vec![vec!["type".to_string()], vec!["process".into(), "args".into()], vec!["file".into(), "path".into()]]
        );
        assert!(!u.dynamic && !u.nondeterministic && !u.refers_rules);
        let pos = top_level_rules(&toks).into_iter().find(|r| r.0 == "alert").unwrap();
        assert_eq!((pos.1, pos.2), (6, 1));
    }

    #[test]
    fn inlines_import_aliases() {
        let src = "package p\nimport rego.v1\nimport data.sensor.lib.process\nimport data.sensor.lib.net as netlib\nimport data.x.y\n\nr if {\n\tprocess.in_container; input.process.exe == \"process.x\"\n\tnetlib.local_addr(process.names[0])\n}\ns if { some y in input.a; y.b }\n";
        let out = inline_imports(src, &tokenize(src));
        assert_eq!(
            out,
            "package p\nimport rego.v1\nimport data.sensor.lib.process\nimport data.sensor.lib.net as netlib\nimport data.x.y\n\nr if {\n\tdata.sensor.lib.process.in_container; input.process.exe == \"process.x\"\n\tdata.sensor.lib.net.local_addr(data.sensor.lib.process.names[0])\n}\ns if { some y in input.a; y.b }\n",
            "`y` is also a local variable: left alone"
        );
    }

    #[test]
    fn flags_dynamic_and_nondeterministic_use() {
        let u = input_use(&tokenize("x if { walk(input, [p, v]) }"));
        assert!(u.dynamic);
        let u = input_use(&tokenize("x if { input[\"type\"] == 1 }"));
        assert!(u.dynamic);
        let u = input_use(&tokenize("x if { time.now_ns() > input.ts }"));
        assert!(u.nondeterministic && !u.dynamic);
        let u = input_use(&tokenize("x if { data.sensor.rules.y.alert }"));
        assert!(u.refers_rules);
    }
}
