//! Where a run finds the project's own files and tools: the firmware ELF,
//! the rp2040js runner, spead2's Python and sender script, fixtures. The
//! library crates are handed explicit paths; this is the one place that looks.
//!
//! One rule for every file, so that an installed or copied `perfkit` works
//! wherever the project's files can be reached:
//!
//! 1. an explicit value (a scenario key such as `pico.elf`, or `input`), as
//!    given, when it exists;
//! 2. under `$PERFKIT_ROOT` (`scripts/env.sh` sets it);
//! 3. under the scenario file's folder and each folder above it;
//! 4. under the current folder and each folder above it.
//!
//! Without an explicit value the project-relative default is looked for by
//! steps 2 to 4; so is a relative explicit value that is not found as given.
//! Where none of them has it, the copies built into the binary
//! ([`crate::shipped`]: the shipped scenarios, by name, and the test image)
//! stand in, so an installed `perfkit` runs its own scenarios anywhere.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The environment variable naming the project folder.
pub const ROOT_VAR: &str = "PERFKIT_ROOT";

/// The folders searched, in order (steps 2 to 4).
#[derive(Debug, Clone)]
pub struct Places {
    root: Option<PathBuf>,
    scenario_dir: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl Places {
    /// The places for a run of the scenario at `scenario`, from this process's
    /// environment and current folder.
    pub fn for_scenario(scenario: &Path) -> Places {
        let root = std::env::var_os(ROOT_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Places::new(root, scenario, std::env::current_dir().ok())
    }

    /// The places for a process that runs no scenario file (`perfkit
    /// agent`): the environment's project folder and the current folder.
    pub fn here() -> Places {
        Places {
            root: std::env::var_os(ROOT_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            scenario_dir: None,
            cwd: std::env::current_dir().ok(),
        }
    }

    fn new(root: Option<PathBuf>, scenario: &Path, cwd: Option<PathBuf>) -> Places {
        // Absolute, so that "the folders above" a relative scenario path
        // reach past the current folder.
        let scenario_dir = std::path::absolute(scenario)
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned));
        Places {
            root,
            scenario_dir,
            cwd,
        }
    }

    /// The first existing `rel` under the places, in order.
    pub fn find(&self, rel: &Path) -> Option<PathBuf> {
        let scenario_dirs = self.scenario_dir.iter().flat_map(|d| d.ancestors());
        let current_dirs = self.cwd.iter().flat_map(|d| d.ancestors());
        self.root
            .as_deref()
            .into_iter()
            .chain(scenario_dirs)
            .chain(current_dirs)
            .map(|d| d.join(rel))
            .find(|p| p.exists())
    }

    /// An explicit path as given, else (when relative) by the search.
    pub fn find_given(&self, path: &Path) -> Option<PathBuf> {
        if path.exists() {
            Some(path.to_owned())
        } else if path.is_relative() {
            self.find(path)
        } else {
            None
        }
    }

    /// The places, for an error message.
    fn describe(&self) -> String {
        let root = match &self.root {
            Some(r) => format!("${ROOT_VAR} ({})", r.display()),
            None => format!("${ROOT_VAR} (not set)"),
        };
        let mut parts = vec![root];
        let mut dirs: Vec<&PathBuf> = Vec::new();
        for d in [&self.scenario_dir, &self.cwd].into_iter().flatten() {
            if !dirs.contains(&d) {
                parts.push(format!("{} and the folders above it", d.display()));
                dirs.push(d);
            }
        }
        parts.join(", ")
    }

    /// An explicit path: as given, else (when relative) by the search.
    /// `what` names it in the error, `hint` says how to get it.
    pub fn given(&self, path: &Path, what: &str, hint: &str) -> anyhow::Result<PathBuf> {
        if let Some(p) = self.find_given(path) {
            return Ok(p);
        }
        bail!(
            "{what} {} not found as given nor under {}; {hint}",
            path.display(),
            self.describe()
        )
    }

    /// A project-relative default, by the search.
    pub fn default(&self, rel: &str, what: &str, hint: &str) -> anyhow::Result<PathBuf> {
        match self.find(Path::new(rel)) {
            Some(p) => Ok(p),
            None => bail!(
                "{what} not found: looked for {rel} under {}; {hint}",
                self.describe()
            ),
        }
    }

    /// `explicit` when given, else the default `rel`.
    pub fn file(
        &self,
        explicit: Option<&Path>,
        rel: &str,
        what: &str,
        hint: &str,
    ) -> anyhow::Result<PathBuf> {
        match explicit {
            Some(p) => self.given(p, what, hint),
            None => self.default(rel, what, hint),
        }
    }

    /// The Python for spead2: the project's venv (`build/venv/bin/python`,
    /// made by scripts/setup.d/30-spead2.sh) when found, else `python3` from
    /// PATH (where `scripts/env.sh` puts the venv).
    pub fn spead2_python(&self) -> PathBuf {
        self.find(Path::new("build/venv/bin/python"))
            .unwrap_or_else(|| PathBuf::from("python3"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn order_is_root_then_scenario_folders_then_current_folders() {
        let t = tempfile::tempdir().unwrap();
        let (root, proj, cwd) = (t.path().join("r"), t.path().join("p"), t.path().join("c"));
        let scenario = proj.join("scenarios/s.toml");
        let places = Places::new(Some(root.clone()), &scenario, Some(cwd.join("deep/er")));
        let rel = Path::new("fixtures/f.bin");
        assert_eq!(places.find(rel), None);
        touch(&cwd.join("fixtures/f.bin"));
        assert_eq!(places.find(rel), Some(cwd.join("fixtures/f.bin")));
        touch(&proj.join("fixtures/f.bin"));
        assert_eq!(places.find(rel), Some(proj.join("fixtures/f.bin")));
        touch(&proj.join("scenarios/fixtures/f.bin"));
        assert_eq!(
            places.find(rel),
            Some(proj.join("scenarios/fixtures/f.bin"))
        );
        touch(&root.join("fixtures/f.bin"));
        assert_eq!(places.find(rel), Some(root.join("fixtures/f.bin")));
    }

    #[test]
    fn explicit_value_wins_and_errors_name_what_and_where() {
        let t = tempfile::tempdir().unwrap();
        let scenario = t.path().join("s.toml");
        // Run from the scenario's folder: named once in errors.
        let places = Places::new(None, &scenario, Some(t.path().to_owned()));
        let fw = t.path().join("build/fw.elf");
        touch(&fw);
        let own = t.path().join("mine.elf");
        touch(&own);
        let got = places.file(Some(&own), "build/fw.elf", "firmware", "build it");
        assert_eq!(got.unwrap(), own);
        let got = places.file(None, "build/fw.elf", "firmware", "build it");
        assert_eq!(got.unwrap(), fw);
        // A relative explicit value is searched for like a default.
        let got = places.given(Path::new("build/fw.elf"), "firmware", "build it");
        assert_eq!(got.unwrap(), fw);

        let e = places
            .file(None, "build/none.elf", "firmware ELF", "run setup")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "firmware ELF not found: looked for build/none.elf under $PERFKIT_ROOT (not set), "
            ),
            "{e}"
        );
        assert!(
            e.contains(&format!("{} and the folders above it", t.path().display())),
            "{e}"
        );
        assert!(e.ends_with("; run setup"), "{e}");
        assert_eq!(e.matches("and the folders above it").count(), 1, "{e}");
        let e = places
            .given(Path::new("/no/such.elf"), "firmware ELF", "run setup")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("firmware ELF /no/such.elf not found as given nor under $PERFKIT_ROOT"),
            "{e}"
        );
    }
}
