//! Reads callgrind's output file: per function, its inclusive cost (its
//! own instructions plus those of everything it called) and how often it
//! was called.
//!
//! The format (valgrind's "Callgrind Format Specification") is a list of
//! lines: `fn=NAME` opens a function's block, `cfn=NAME` and
//! `calls=COUNT TARGET` announce a call whose inclusive cost is on the next
//! cost line, and any other cost line (`POSITION COST...`) is the current
//! function's own cost. perfkit asks for `--compress-strings=no` and
//! `--compress-pos=no`, so names are spelled out and positions are plain
//! numbers; compressed names (`(id) name`, `(id)`) are read too. Only the
//! first event (`Ir`, instructions executed) is kept.

use std::collections::HashMap;

/// One function's figures, summed over every block that names it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FnCost {
    /// Instructions in the function itself.
    pub own: u64,
    /// Instructions in the function and everything it called.
    pub inclusive: u64,
    /// Calls of the function (from its callers' `calls=` lines).
    pub calls: u64,
}

/// A callgrind profile: functions by name, and the program's total.
#[derive(Debug, Default)]
pub struct Profile {
    /// Per function name (names repeat across object files and
    /// instantiations; their figures are summed).
    pub fns: HashMap<String, FnCost>,
    /// `totals:` (or `summary:`), the whole program's instructions.
    pub total: u64,
    /// The `cmd:` line: the command that was profiled.
    pub cmd: String,
}

/// Why a profile could not be read.
#[derive(Debug)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub what: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "callgrind output, line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for ParseError {}

/// Resolves `(id) name` / `(id)` compressed names, and plain ones.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn resolve(&mut self, raw: &str) -> String {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix('(') {
            if let Some((id, name)) = rest.split_once(')') {
                let name = name.trim();
                if name.is_empty() {
                    return self.0.get(id).cloned().unwrap_or_default();
                }
                self.0.insert(id.to_owned(), name.to_owned());
                return name.to_owned();
            }
        }
        raw.to_owned()
    }
}

/// Parses a profile. Malformed numbers are errors naming the line; lines
/// of kinds this reader does not use are skipped.
pub fn parse(text: &str) -> Result<Profile, ParseError> {
    let mut p = Profile::default();
    let mut names = Names::default();
    let mut current = String::new();
    let mut callee = String::new();
    // The call whose inclusive cost the next cost line carries.
    let mut pending_call: Option<u64> = None;
    let mut positions = 1usize;
    for (i, line) in text.lines().enumerate() {
        let err = |what: String| ParseError { line: i + 1, what };
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.strip_prefix("positions:") {
            positions = v.split_whitespace().count().max(1);
        } else if let Some(v) = line.strip_prefix("cmd:") {
            p.cmd = v.trim().to_owned();
        } else if let Some(v) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
        {
            p.total = first_number(v).map_err(err)?;
        } else if let Some(v) = line.strip_prefix("fn=") {
            current = names.resolve(v);
            pending_call = None;
        } else if let Some(v) = line.strip_prefix("cfn=") {
            callee = names.resolve(v);
        } else if let Some(v) = line.strip_prefix("calls=") {
            pending_call = Some(first_number(v).map_err(err)?);
        } else if line.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '*')) {
            let cost = line
                .split_whitespace()
                .nth(positions)
                .map(|c| c.parse::<u64>())
                .transpose()
                .map_err(|e| err(format!("bad cost: {e}")))?
                .unwrap_or(0);
            match pending_call.take() {
                Some(n) => {
                    p.fns.entry(current.clone()).or_default().inclusive += cost;
                    p.fns.entry(callee.clone()).or_default().calls += n;
                }
                None => {
                    let f = p.fns.entry(current.clone()).or_default();
                    f.own += cost;
                    f.inclusive += cost;
                }
            }
        } else if let Some(v) = line
            .strip_prefix("fl=")
            .or_else(|| line.strip_prefix("fi="))
        {
            // File names share the compression table's syntax; keep ids known.
            names.resolve(v);
        } else if let Some(v) = line
            .strip_prefix("fe=")
            .or_else(|| line.strip_prefix("cfi="))
            .or_else(|| line.strip_prefix("cfl="))
            .or_else(|| line.strip_prefix("ob="))
            .or_else(|| line.strip_prefix("cob="))
        {
            names.resolve(v);
        }
    }
    Ok(p)
}

fn first_number(v: &str) -> Result<u64, String> {
    let t = v.split_whitespace().next().unwrap_or("");
    t.parse().map_err(|e| format!("bad number `{t}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped as callgrind writes it (`--compress-strings=no --compress-pos=no`).
    const SAMPLE: &str = "\
# callgrind format
version: 1
creator: callgrind-3.22.0
cmd: perfkit __count-instructions
positions: line
events: Ir
summary: 1000

fl=src/main.rs
fn=main
10 5
cfn=outer
calls=2 20
11 300
cfn=leaf
calls=1 30
12 40

fn=outer
20 100
cfn=leaf
calls=4 30
21 160

fn=leaf
30 200

totals: 1000
";

    #[test]
    fn inclusive_costs_and_calls_add_up() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(p.total, 1000);
        assert_eq!(p.cmd, "perfkit __count-instructions");
        assert_eq!(
            p.fns["main"],
            FnCost {
                own: 5,
                inclusive: 345,
                calls: 0
            }
        );
        assert_eq!(
            p.fns["outer"],
            FnCost {
                own: 100,
                inclusive: 260,
                calls: 2
            }
        );
        assert_eq!(
            p.fns["leaf"],
            FnCost {
                own: 200,
                inclusive: 200,
                calls: 5
            }
        );
    }

    #[test]
    fn compressed_names_resolve() {
        let text = "positions: line\nevents: Ir\nfn=(1) a\n1 3\ncfn=(2) b\ncalls=1 2\n2 7\nfn=(2)\n2 7\nfn=(1)\n3 1\n";
        let p = parse(text).unwrap();
        assert_eq!(p.fns["a"].inclusive, 11);
        assert_eq!(p.fns["b"].calls, 1);
        assert_eq!(p.fns["b"].own, 7);
    }

    #[test]
    fn a_bad_number_names_its_line() {
        let e = parse("events: Ir\nfn=a\n1 x\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(parse("totals: many\n").is_err());
    }
}
