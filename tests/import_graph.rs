//! No import circles between the modules of any crate of the workspace.
//!
//! Each crate's source files are read from its `lib.rs`/`main.rs` down through `mod` lines. A
//! file imports another when its code names an item of the other (`use crate::a::B`,
//! `super::c::d`, `crate::e::f(..)` in an expression). A path through a module's `pub use`
//! re-export leads to the file that defines the item, and the `pub use` lines themselves are a
//! table of contents, not imports. The test fails on every strongly connected set of two or more
//! files, naming them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates' source roots, relative to the workspace root.
const CRATE_ROOTS: &[&str] = &[
    "src/lib.rs",
    "envs/src/lib.rs",
    "python/src/lib.rs",
    "agents/planet_dcem/src/lib.rs",
    "agents/planet_dcem/src/main.rs",
    "agents/ppo/src/lib.rs",
    "agents/ppo/src/main.rs",
    "agents/regression_ebm/src/lib.rs",
    "agents/regression_ebm/src/main.rs",
    "agents/cartpole_embed/src/lib.rs",
    "agents/cartpole_embed/src/main.rs",
    "examples/mountain_car/src/lib.rs",
];

/// One module of a crate: its file, its children, and the names it re-exports.
#[derive(Default)]
struct Module {
    file: PathBuf,
    children: BTreeMap<String, usize>,
    parent: Option<usize>,
    /// `pub use` name -> the path it points at, relative to this module.
    reexports: BTreeMap<String, Vec<String>>,
    /// `pub use path::*` globs, relative to this module.
    globs: Vec<Vec<String>>,
    /// Paths its code names, relative to this module (from `use` lines and expressions).
    refs: Vec<Vec<String>>,
}

/// The code of a file without comments, string and character literals, and inline modules
/// (`mod tests { .. }`: their paths are relative to a module that has no file).
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3;
        } else if c == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    strip_inline_modules(&out)
}

fn strip_inline_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(i) = find_inline_mod(rest) {
        out.push_str(&rest[..i]);
        let open = i + rest[i..].find('{').unwrap();
        let mut depth = 0;
        let mut end = rest.len();
        for (k, ch) in rest[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Where `mod name {` starts (an inline module), if anywhere.
fn find_inline_mod(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = code[from..].find("mod ") {
        let at = from + k;
        let word_start = at == 0 || !is_ident(code.as_bytes()[at - 1] as char);
        let after = &code[at + 4..];
        let name_len = after.chars().take_while(|c| is_ident(*c)).count();
        let tail = after[name_len..].trim_start();
        if word_start && name_len > 0 && tail.starts_with('{') {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut full = prefix.to_vec();
            full.extend(head);
            let mut depth = 0;
            let mut start = 0;
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&full, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            go(&full, &inner[start..], out);
        } else {
            let tree = tree.split(" as ").next().unwrap().trim();
            let mut full = prefix.to_vec();
            full.extend(tree.split("::").map(|s| s.trim().to_string()));
            out.push(full);
        }
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// `crate::..`, `super::..` and `self::..` paths in expressions (outside `use` lines).
fn expression_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start_word in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(k) = code[from..].find(start_word) {
            let at = from + k;
            from = at + start_word.len();
            if at > 0 && (is_ident(bytes[at - 1] as char) || bytes[at - 1] == b':') {
                continue;
            }
            let mut path = vec![start_word.trim_end_matches(':').to_string()];
            let mut rest = &code[from..];
            loop {
                let n = rest.chars().take_while(|c| is_ident(*c)).count();
                if n == 0 {
                    break;
                }
                path.push(rest[..n].to_string());
                rest = &rest[n..];
                if let Some(r) = rest.strip_prefix("::") {
                    rest = r;
                } else {
                    break;
                }
            }
            out.push(path);
        }
    }
    out
}

struct Crate {
    modules: Vec<Module>,
}

impl Crate {
    fn read(root_file: &Path) -> Crate {
        let mut c = Crate {
            modules: Vec::new(),
        };
        c.add(root_file.to_path_buf(), None, true);
        c
    }

    fn add(&mut self, file: PathBuf, parent: Option<usize>, dir_owner: bool) -> usize {
        let id = self.modules.len();
        self.modules.push(Module {
            file: file.clone(),
            parent,
            ..Module::default()
        });
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code_of(&text);
        // Where this module's children live.
        let dir = if dir_owner {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        // `mod` and `use` items start a line (the code is rustfmt-formatted); a `use` runs to
        // its `;`. Everything else is searched for paths in expressions.
        let lines: Vec<&str> = code.lines().collect();
        let mut uses = Vec::new();
        let mut expr_code = String::new();
        let mut path_attr_seen: Option<String> = None;
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim();
            let (attrs, item) = split_attrs(line);
            if let Some(p) = attrs.iter().find_map(|a| path_attr(a)) {
                path_attr_seen = Some(p);
            }
            let item = item.trim();
            let bare = strip_vis(item);
            if let Some(name) = bare.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let name = name.trim().to_string();
                let child_file = match path_attr_seen.take() {
                    Some(p) => file.parent().unwrap().join(p),
                    None => {
                        let flat = dir.join(format!("{name}.rs"));
                        if flat.exists() {
                            flat
                        } else {
                            dir.join(&name).join("mod.rs")
                        }
                    }
                };
                let owner = child_file.file_name().is_some_and(|f| f == "mod.rs");
                let child = self.add(child_file, Some(id), owner);
                self.modules[id].children.insert(name, child);
            } else if let Some(first) = bare.strip_prefix("use ") {
                let public = item.starts_with("pub");
                let mut tree = first.to_string();
                while !tree.contains(';') && i + 1 < lines.len() {
                    i += 1;
                    tree.push(' ');
                    tree.push_str(lines[i].trim());
                }
                let tree = tree.split(';').next().unwrap().to_string();
                uses.push((public, tree));
            } else {
                if !line.is_empty() && !line.starts_with("#[") {
                    path_attr_seen = None;
                }
                expr_code.push_str(lines[i]);
                expr_code.push('\n');
            }
            i += 1;
        }
        for (public, tree) in uses {
            for path in expand_use(&tree) {
                if public {
                    let last = path.last().cloned().unwrap_or_default();
                    if last == "*" {
                        self.modules[id].globs.push(path[..path.len() - 1].to_vec());
                    } else {
                        let name = tree_alias(&tree, &last);
                        self.modules[id].reexports.insert(name, path);
                    }
                } else {
                    self.modules[id].refs.push(path);
                }
            }
        }
        let paths = expression_paths(&expr_code);
        self.modules[id].refs.extend(paths);
        id
    }

    /// The file defining what `path` (relative to module `at`) names; `None` outside the crate.
    fn resolve(&self, at: usize, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 || path.is_empty() {
            return None;
        }
        let (mut m, rest) = match path[0].as_str() {
            "crate" => (0, &path[1..]),
            "self" => (at, &path[1..]),
            "super" => {
                let mut m = at;
                let mut i = 0;
                while path.get(i).map(String::as_str) == Some("super") {
                    m = self.modules[m].parent?;
                    i += 1;
                }
                (m, &path[i..])
            }
            first => {
                // A path from a `use` inside a module: a child of it, or another crate.
                if self.modules[at].children.contains_key(first)
                    || self.modules[at].reexports.contains_key(first)
                {
                    (at, path)
                } else {
                    return None;
                }
            }
        };
        for (i, seg) in rest.iter().enumerate() {
            if let Some(&child) = self.modules[m].children.get(seg) {
                m = child;
                continue;
            }
            if seg == "*" {
                return Some(m);
            }
            if let Some(target) = self.modules[m].reexports.get(seg) {
                let mut full = target.clone();
                full.extend(rest[i + 1..].iter().cloned());
                return self.resolve(m, &full, depth + 1).or(Some(m));
            }
            for glob in &self.modules[m].globs {
                let mut full = glob.clone();
                full.extend(rest[i..].iter().cloned());
                if let Some(found) = self.resolve(m, &full, depth + 1)
                    && found != m
                {
                    return Some(found);
                }
            }
            return Some(m);
        }
        Some(m)
    }

    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (id, m) in self.modules.iter().enumerate() {
            for path in &m.refs {
                if let Some(to) = self.resolve(id, path, 0)
                    && to != id
                {
                    edges.entry(id).or_default().insert(to);
                }
            }
        }
        edges
    }
}

fn split_attrs(s: &str) -> (Vec<String>, &str) {
    let mut attrs = Vec::new();
    let mut rest = s;
    while let Some(r) = rest.strip_prefix("#[") {
        let mut depth = 1;
        let mut end = r.len();
        for (i, ch) in r.char_indices() {
            match ch {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        attrs.push(r[..end].to_string());
        rest = r[(end + 1).min(r.len())..].trim_start();
    }
    (attrs, rest)
}

fn strip_vis(item: &str) -> &str {
    let item = item.trim_start();
    if let Some(r) = item.strip_prefix("pub(") {
        return r.split_once(')').map(|x| x.1.trim_start()).unwrap_or(item);
    }
    item.strip_prefix("pub ")
        .map(str::trim_start)
        .unwrap_or(item)
}

fn path_attr(attr: &str) -> Option<String> {
    let r = attr
        .trim()
        .strip_prefix("path")?
        .trim_start()
        .strip_prefix('=')?;
    Some(r.trim().trim_matches('"').to_string())
}

/// The name a `pub use` makes visible for the path ending in `last` (its `as` alias if any).
fn tree_alias(tree: &str, last: &str) -> String {
    let needle = format!("{last} as ");
    match tree.find(&needle) {
        Some(i) => tree[i + needle.len()..]
            .chars()
            .take_while(|c| is_ident(*c))
            .collect(),
        None => last.to_string(),
    }
}

/// Strongly connected sets of two or more nodes (Tarjan).
fn circles(n: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> = t.edges.get(&v).into_iter().flatten().copied().collect();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut set = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                t.out.push(set);
            }
        }
    }
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = workspace();
    let mut report = Vec::new();
    let mut files = 0;
    let mut arrows = 0;
    for rel in CRATE_ROOTS {
        let krate = Crate::read(&root.join(rel));
        let edges = krate.edges();
        files += krate.modules.len();
        arrows += edges.values().map(BTreeSet::len).sum::<usize>();
        for set in circles(krate.modules.len(), &edges) {
            let names: Vec<String> = set
                .iter()
                .map(|&m| {
                    let f = &krate.modules[m].file;
                    f.strip_prefix(&root).unwrap_or(f).display().to_string()
                })
                .collect();
            report.push(format!("{rel}: {}", names.join(" <-> ")));
        }
    }
    assert!(files > 80, "only {files} source files read");
    assert!(arrows > 100, "only {arrows} imports found");
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

/// The detector itself: a circle written on purpose is found, re-exports are not imports.
#[test]
fn a_circle_is_found_and_a_reexport_is_not_one() {
    let dir = std::env::temp_dir().join(format!("dcem_import_graph_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "mod a;\nmod b;\nmod m;\npub use m::Thing;\n",
    )
    .unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::g;\npub fn f() { g() }\n").unwrap();
    std::fs::write(dir.join("b.rs"), "pub fn g() { crate::a::f() }\n").unwrap();
    std::fs::write(
        dir.join("m/mod.rs"),
        "mod inner;\npub use inner::Thing;\npub fn helper() {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("m/inner.rs"),
        "use crate::m::helper; // \"crate::a::f\" in a comment\npub struct Thing;\n",
    )
    .unwrap();
    let krate = Crate::read(&dir.join("lib.rs"));
    let edges = krate.edges();
    let found = circles(krate.modules.len(), &edges);
    let names: Vec<Vec<String>> = found
        .iter()
        .map(|set| {
            let mut n: Vec<String> = set
                .iter()
                .map(|&m| {
                    let f = &krate.modules[m].file;
                    f.strip_prefix(&dir).unwrap().display().to_string()
                })
                .collect();
            n.sort();
            n
        })
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(names, vec![vec!["a.rs".to_string(), "b.rs".to_string()]]);
}
